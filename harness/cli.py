"""`hiper-bench`: run, sweep, report, leaderboard, verify, bench, serve, serve-env. Thin commands over `harness`.

This is the only place that turns errors into exit codes: 2 for bad input (one line, nothing
written), 1 for a failed verification or a run that could not proceed.
"""

from __future__ import annotations

import contextlib
import functools
import json
import sqlite3
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any, TypeVar

import typer
from rich.console import Console
from rich.table import Table

from harness.errors import HarnessError
from harness.runner import WorkerFailure

app = typer.Typer(no_args_is_help=True, add_completion=False, pretty_exceptions_enable=False,
                  help="Benchmark flat and hierarchical LLM agents on the HiPER text envs (ALFWorld, WebShop).")
out = Console(soft_wrap=True)
err = Console(stderr=True, soft_wrap=True)
F = TypeVar("F", bound=Callable[..., Any])

Db = Annotated[Path, typer.Option("--db", help="Results database (SQLite).", envvar="HIPER_BENCH_DB")]
Workers = Annotated[int | None, typer.Option(min=1, help="Env host processes, each keeping many envs "
                                                          "(default: up to 4, one per CPU).")]
Concurrency = Annotated[int | None, typer.Option(min=1, help="Episodes played at once, each moving as soon as "
                                                              "its own action is ready (default: 16).")]
StepTimeout = Annotated[float, typer.Option(min=0.1, help="Seconds an env may take per step before its host "
                                                          "is replaced and the episode retried.")]
NoProgress = Annotated[bool, typer.Option("--no-progress", help="Hide the progress bar.")]
Backend = Annotated[str, typer.Option(help="Where env hosts run: local processes, or ray actors.")]
Address = Annotated[str | None, typer.Option(help="Ray cluster to join, e.g. 10.0.0.5:6379 or auto "
                                                  "(default: RAY_ADDRESS, else start a local Ray).")]
DEFAULT_DB = Path("runs/results.sqlite")


def one_line_errors(command: F) -> F:
    """Bad input exits 2 with one line; a worker failure that stops the run exits 1.

    Bad input includes a path the command cannot write (an output folder under /proc, a missing
    drive) and a results database damaged past its header (SQLite finds it only when it reads the
    damaged pages): one line naming the file, never a traceback."""
    @functools.wraps(command)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return command(*args, **kwargs)
        except HarnessError as error:
            err.print(f"error: {error}", markup=False, highlight=False, soft_wrap=True)
            raise typer.Exit(2) from None
        except OSError as error:
            where = f"{error.filename}: " if error.filename else ""
            err.print(f"error: {where}{error.strerror or error}", markup=False, highlight=False, soft_wrap=True)
            raise typer.Exit(2) from None
        except sqlite3.DatabaseError as error:
            db = kwargs.get("db") or kwargs.get("database") or "the results database"
            err.print(f"error: {db} is damaged or unreadable ({error})", markup=False, highlight=False,
                      soft_wrap=True)
            raise typer.Exit(2) from None
        except WorkerFailure as error:
            err.print(f"error: {error}", markup=False, highlight=False, soft_wrap=True)
            raise typer.Exit(1) from None
    return wrapper  # type: ignore[return-value]


def _print_summary(summary: Any, db: Path) -> None:
    rate = f", {summary.ran / summary.seconds:.2f} episodes/s" if summary.seconds else ""
    out.print(f"{summary.ran} episodes played ({summary.succeeded} won, {summary.errors} errors{rate}), "
              f"{summary.skipped} already stored; results in {db}", highlight=False)


@app.command()
@one_line_errors
def envs() -> None:
    """List the env ids, their splits and task counts."""
    import hiper_envs
    from harness.envspec import SPLITS, count_tasks

    table = Table("env id", "split", "tasks")
    with err.status("building each env and split..."):
        for env_id in hiper_envs.ENV_IDS:
            for split in SPLITS.get(env_id, (None,)):
                table.add_row(env_id, split or "(default)", str(count_tasks(env_id, split)))
    out.print(table)


@app.command()
@one_line_errors
def run(
    env: Annotated[str, typer.Option(help="Env id, e.g. HiPER/ALFWorld-v0.")],
    agent: Annotated[str, typer.Option(help="Agent: random, expert, react or hiper.")],
    split: Annotated[str | None, typer.Option(help="Split (default: the env's evaluation split).")] = None,
    episodes: Annotated[int | None, typer.Option(help="Episodes (default: every task of the split once).")] = None,
    seed: Annotated[int, typer.Option(min=0, help="Seed of the task order and of the episodes.")] = 0,
    concurrency: Concurrency = None,
    workers: Workers = None,
    db: Db = DEFAULT_DB,
    env_kwargs: Annotated[str | None, typer.Option(help="JSON object of env constructor keywords.")] = None,
    agent_kwargs: Annotated[str | None, typer.Option(help="JSON object of agent keywords.")] = None,
    label: Annotated[str, typer.Option(help="Name of this agent configuration in reports.")] = "",
    max_steps: Annotated[int | None, typer.Option(min=1, help="Step budget (default: the env's).")] = None,
    step_timeout: StepTimeout = 60.0,
    backend: Backend = "local",
    address: Address = None,
    no_progress: NoProgress = False,
) -> None:
    """Run one agent on one env split; rerunning the same command resumes it."""
    from harness.envspec import check_env_id, default_split
    from harness.sweep import (
        DEFAULT_CONCURRENCY,
        Run,
        check_episodes,
        execute,
        make_agent_entry,
        make_env_entry,
        parse_json_arg,
    )

    check_env_id(env)  # before anything else: a wrong id is the likeliest mistake
    entry = make_env_entry(env, split or default_split(env), parse_json_arg(env_kwargs, "--env-kwargs"), max_steps)
    the_run = Run(entry, make_agent_entry(agent, parse_json_arg(agent_kwargs, "--agent-kwargs"), label), seed,
                  check_episodes(episodes))
    _print_summary(execute([the_run], db, workers, step_timeout, progress=not no_progress, backend=backend,
                           address=address, concurrency=concurrency or DEFAULT_CONCURRENCY), db)


@app.command()
@one_line_errors
def sweep(
    config: Annotated[Path, typer.Argument(help="Sweep YAML (see harness/configs/sweeps/).")],
    db: Db = DEFAULT_DB,
    workers: Annotated[int | None, typer.Option(min=1, help="Env host processes (default: the config's, "
                                                            "else up to 4, one per CPU).")] = None,
    concurrency: Annotated[int | None, typer.Option(min=1, help="Episodes played at once (default: the "
                                                                "config's, else 16).")] = None,
    backend: Backend = "local",
    address: Address = None,
    agent: Annotated[str | None, typer.Option(help="Add this agent to the grid, e.g. react.")] = None,
    agent_kwargs: Annotated[str | None, typer.Option(help="JSON keywords of the added agent.")] = None,
    label: Annotated[str, typer.Option(help="Report name of the added agent.")] = "",
    episodes: Annotated[int | None, typer.Option(help="Override the config's episodes per run.")] = None,
    no_progress: NoProgress = False,
) -> None:
    """Run the grid envs x agents x seeds of CONFIG; rerunning resumes where it stopped."""
    from harness.sweep import check_episodes, execute, load_sweep, make_agent_entry, parse_json_arg

    grid = load_sweep(config)
    if agent_kwargs and not agent:
        raise HarnessError("--agent-kwargs needs --agent")
    if agent:
        grid.agents.append(make_agent_entry(agent, parse_json_arg(agent_kwargs, "--agent-kwargs"), label))
    if episodes is not None:
        grid.episodes = check_episodes(episodes)
    runs = grid.runs()
    out.print(f"sweep {config}: {len(grid.envs)} envs x {len(grid.agents)} agents x {len(grid.seeds)} seeds = "
              f"{len(runs)} runs", highlight=False)
    summary = execute(runs, db, workers or grid.workers, grid.step_timeout, progress=not no_progress,
                      backend=backend, address=address, concurrency=concurrency or grid.concurrency)
    _print_summary(summary, db)


def _report(db: Path, out_dir: Path) -> dict[str, Any]:
    from harness.report import build_report, write_report
    from harness.store import Store

    with Store(db, create=False) as store:
        frame = store.frame(transcripts=True)
    if frame.empty:
        raise HarnessError(f"{db} holds no episodes yet")
    report = build_report(frame)
    for path in write_report(report, out_dir):
        out.print(f"wrote {path}", highlight=False)
    return report


@app.command()
@one_line_errors
def report(db: Db = DEFAULT_DB,
           out_dir: Annotated[Path, typer.Option("--out", help="Directory for the report files.")] = Path("runs/report"),
           ) -> None:
    """Success with 95% Wilson intervals, scores, paired tests and plots, per env, agent and task type."""
    _report(db, out_dir)


@app.command()
@one_line_errors
def leaderboard(
    db: Db = DEFAULT_DB,
    out_dir: Annotated[Path, typer.Option("--out", help="Directory for the leaderboard.")] = Path("runs/leaderboard"),
    from_report: Annotated[Path | None, typer.Option("--report", help="Build from this report.json instead of "
                                                                       "reporting on --db.")] = None,
) -> None:
    """Our results beside the published ones (separately, labelled by task set): HTML and Markdown."""
    from leaderboards.build import write_leaderboard

    if from_report is None:
        _report(db, out_dir / "report")
        from_report = out_dir / "report" / "report.json"
    try:
        data = json.loads(from_report.read_text())
    except (OSError, ValueError) as error:
        raise HarnessError(f"cannot read report {from_report}: {error}") from error
    for path in write_leaderboard(data, out_dir):
        out.print(f"wrote {path}", highlight=False)


@app.command()
@one_line_errors
def verify(db: Db = DEFAULT_DB, workers: Workers = None, concurrency: Concurrency = None,
           step_timeout: StepTimeout = 60.0, no_progress: NoProgress = False,
           allow_module: Annotated[list[str] | None, typer.Option(
               help="Replay rows whose env id imports this module (`module:Id`); repeatable. Without it "
                    "such rows are mismatches: verify never imports code a row names.")] = None) -> None:
    """Check every stored row and replay its transcript in a fresh env; exit 1 listing what differs."""
    from harness.sweep import DEFAULT_CONCURRENCY
    from harness.verify import verify as replay

    checked, mismatches = replay(db, workers, step_timeout, progress=not no_progress,
                                 allowed_modules=set(allow_module or ()),
                                 concurrency=concurrency or DEFAULT_CONCURRENCY)
    for m in mismatches:
        where = f"run {m.run_id}" + (f" episode {m.episode} ({m.agent}, task {m.task_id})" if m.episode >= 0 else "")
        out.print(f"MISMATCH {where}: {m.problem}", highlight=False, markup=False)
    bad = len({(m.run_id, m.episode) for m in mismatches})
    out.print(f"{checked} episodes checked, {bad} mismatched", highlight=False)
    if mismatches:
        raise typer.Exit(1)


@app.command()
@one_line_errors
def bench(
    env: Annotated[list[str] | None, typer.Option(help="Env id (repeatable; default: ALFWorld and WebShop).")] = None,
    episodes: Annotated[int, typer.Option(min=1, help="Episodes per measurement.")] = 10,
    workers: Annotated[str, typer.Option(help="Comma-separated worker counts to measure.")] = "1,2",
) -> None:
    """Expert-agent throughput: stepping the env directly vs through the harness with N workers."""
    from harness import bench as measure
    from harness.envspec import default_split

    try:
        counts = [int(w) for w in workers.split(",")]
    except ValueError as error:
        raise HarnessError(f"--workers must be comma-separated integers, got {workers!r}") from error
    table = Table("env", "mode", "episodes", "steps", "episodes/s", "steps/s", "overhead per step")
    for env_id in env or ["HiPER/ALFWorld-v0", "HiPER/WebShop-v0"]:
        split = default_split(env_id)
        with err.status(f"{env_id}: direct"):
            base = measure.direct(env_id, split, episodes)
        rows = [base]
        for count in counts:
            with err.status(f"{env_id}: harness with {count} workers"):
                rows.append(measure.harness(env_id, split, episodes, count))
        for r in rows:
            overhead = (base.steps_per_s / r.steps_per_s - 1) * 100
            table.add_row(env_id, r.mode, str(r.episodes), str(r.steps), f"{r.episodes_per_s:.2f}",
                          f"{r.steps_per_s:.1f}", "" if r is base else f"{overhead:+.0f}%")
    out.print(table)


@app.command()
@one_line_errors
def export(db: Db = DEFAULT_DB,
           to: Annotated[Path, typer.Option("--out", help="File to write: .parquet or .csv.")] = Path("runs/results.parquet"),
           ) -> None:
    """Write every stored episode (with transcripts) to Parquet or CSV."""
    from harness.store import Store

    with Store(db, create=False) as store:
        out.print(f"wrote {store.export(to)}", highlight=False)


@app.command()
@one_line_errors
def serve(
    model: Annotated[str, typer.Option(help="Model directory (or hub id) for transformers.")],
    host: Annotated[str, typer.Option(help="Address to bind; 127.0.0.1 keeps it on this machine.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(min=0, max=65535, help="Port (0: any free port).")] = 8000,
    name: Annotated[str | None, typer.Option(help="Model name clients send (default: --model).")] = None,
    device: Annotated[str, typer.Option(help="torch device.")] = "cpu",
    max_new_tokens: Annotated[int, typer.Option(min=1, help="Tokens generated per reply.")] = 128,
    temperature: Annotated[float, typer.Option(min=0.0, help="0 is greedy decoding.")] = 0.0,
    batch_size: Annotated[int, typer.Option(min=1, help="Requests generated together.")] = 8,
) -> None:
    """An OpenAI-compatible chat server (/v1/chat/completions) over the hf backend."""
    from agents.backends.hf import HFBackend
    from agents.backends.server import make_server

    if model.startswith(("/", ".", "~")) and not Path(model).expanduser().is_dir():
        raise HarnessError(f"--model {model}: no such directory")
    with err.status(f"loading {model}..."):
        try:
            backend = HFBackend(model, device=device, max_new_tokens=max_new_tokens, temperature=temperature,
                                batch_size=batch_size)
        except (OSError, ValueError, RuntimeError) as error:  # no such model, not a model, a bad device
            first = (str(error).strip().splitlines() or [type(error).__name__])[0]
            raise HarnessError(f"cannot load model {model!r}: {first}") from None
    try:
        server = make_server(backend, name or model, host, port, batch_size)
    except OSError as error:
        raise HarnessError(f"cannot listen on {host}:{port}: {error.strerror}") from error
    out.print(f"serving {name or model} on http://{server.server_address[0]}:{server.server_address[1]}/v1",
              highlight=False)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        server.server_close()


@app.command("serve-env")
@one_line_errors
def serve_env(
    env: Annotated[str, typer.Argument(help="Env id, e.g. HiPER/ALFWorld-v0.")],
    split: Annotated[str | None, typer.Option(help="Split (default: the env's evaluation split).")] = None,
    env_kwargs: Annotated[str | None, typer.Option(help="JSON object of env constructor keywords.")] = None,
    wrapper: Annotated[list[str] | None, typer.Option(help="Wrapper preset, e.g. plan_execute (repeatable).")] = None,
    max_steps: Annotated[int | None, typer.Option(min=1, help="Step budget (default: the env's).")] = None,
    port: Annotated[int, typer.Option(min=0, max=65535, help="Port on 127.0.0.1 (0: any free port).")] = 8000,
    max_sessions: Annotated[int, typer.Option(min=1, help="Sessions (env instances) held at once.")] = 64,
    idle_timeout: Annotated[float, typer.Option(min=1.0, help="Seconds before an idle session is dropped.")] = 600.0,
) -> None:
    """Serve an env under OpenEnv's server API (WebSocket /ws, one env per session) on 127.0.0.1."""
    from harness.envspec import EnvSpec, check_env_id, default_split
    from harness.sweep import make_env_entry, parse_json_arg
    from hiper_envs.wrappers import WRAPPERS

    check_env_id(env)
    entry = make_env_entry(env, split or default_split(env), parse_json_arg(env_kwargs, "--env-kwargs"), max_steps)
    for name in wrapper or ():
        if name not in WRAPPERS:
            raise HarnessError(f"unknown wrapper {name!r}; choose from {', '.join(WRAPPERS)}")
    spec = EnvSpec(entry.env_id, {**entry.kwargs, "split": entry.split}, tuple(wrapper or ()), entry.max_steps)
    try:
        from harness.openenv_server import listen, make_app, serve
    except ImportError as error:
        raise HarnessError(f"serve-env needs the openenv extra (pip install 'hiper-bench[openenv]'): {error}") from None
    try:
        env_app = make_app(spec, max_sessions, idle_timeout)
    except (TypeError, ValueError) as error:  # keywords the env does not take, values it refuses
        raise HarnessError(f"cannot build {env}: {error}") from None
    try:
        sock = listen(port)
    except OSError as error:
        raise HarnessError(f"cannot listen on 127.0.0.1:{port}: {error.strerror}") from error
    out.print(f"serving {env} on http://127.0.0.1:{sock.getsockname()[1]} (OpenEnv; WebSocket /ws)", highlight=False)
    with contextlib.suppress(KeyboardInterrupt):
        serve(env_app, sock)


@app.command()
@one_line_errors
def train(
    config: Annotated[Path, typer.Argument(help="Training YAML (see harness/configs/train/).")],
    out_dir: Annotated[Path | None, typer.Option("--out", help="Output directory (default: the config's `out`); "
                                                               "a run there is resumed from its last checkpoint.")] = None,
    backend: Annotated[str | None, typer.Option(help="Where rollout env hosts run: local or ray "
                                                     "(default: the config's env_backend).")] = None,
    address: Address = None,
    plan: Annotated[bool, typer.Option("--plan", help="Print the memory the config needs (parameters, gradients, "
                                                       "optimiser, activations) and stop; exit 2 if it cannot "
                                                       "fit the config's device.")] = False,
) -> None:
    """Train an LLM agent (hiper, ppo, grpo, rloo, gigpo or sft); checkpoints load with `run --agent-kwargs`."""
    from harness.training.trainer import TrainingError
    from harness.training.trainer import train as run_training

    overrides = {key: value for key, value in (("env_backend", backend), ("ray_address", address)) if value}
    if plan:
        from harness.training.config import load_config
        from harness.training.memory import GIB
        from harness.training.memory import plan as memory_plan

        needed = memory_plan(load_config(config, out_dir))
        out.print(needed.table(), highlight=False, markup=False)
        if not needed.fits:
            raise HarnessError(f"{config} needs {needed.total / GIB:.1f} GiB but {needed.device} has "
                               f"{needed.visible / GIB:.1f} GiB; use LoRA, a smaller minibatch_size or a bigger device")
        return
    try:
        last = run_training(config, out_dir, log=lambda line: out.print(line, highlight=False, markup=False),
                            overrides=overrides)
    except TrainingError as error:
        err.print(f"error: {error}", markup=False, highlight=False, soft_wrap=True)
        raise typer.Exit(1) from None
    out.print(f"last checkpoint: {last}", highlight=False)
