"""ALFWorld task collections: the bundled synthetic splits, or an original `json_2.1.1` tree.

Bundled tasks are stored compactly: the PDDL domain and the grammar are the ones shipped in the
`alfworld` wheel and are shared, so each task keeps only what differs (its problem, task text and
walkthrough), one JSON line per task in an xz-compressed file per split. A task becomes the same
`game.tw-pddl` dict the original loader reads, so both sources go through one code path.
"""

from __future__ import annotations

import hashlib
import json
import lzma
import os
from dataclasses import dataclass
from functools import cache, cached_property
from importlib import resources
from pathlib import Path

from hiper_envs.alfworld.world import TASK_TYPES, TaskSpec

SPLITS = ("train", "valid_seen", "valid_unseen")
SYNTHETIC_PREFIX = "synth:"  # task ids and hashes of our generated tasks start with it
DATA_ENV_VAR = "ALFWORLD_DATA"


@dataclass(frozen=True)
class AlfworldTask:
    task_id: str
    spec: TaskSpec
    game: dict  # the game.tw-pddl content: pddl_domain, grammar, pddl_problem, walkthrough, solvable
    synthetic: bool

    @property
    def task_text(self) -> str:
        return task_text_of(self.game["grammar"])

    @property
    def walkthrough(self) -> list[str]:
        return list(self.game.get("walkthrough") or [])

    @cached_property
    def task_hash(self) -> str:
        canonical = json.dumps(
            {key: self.game.get(key) for key in ("pddl_domain", "grammar", "pddl_problem", "walkthrough")},
            sort_keys=True,
        )
        digest = hashlib.sha256(canonical.encode()).hexdigest()
        return (SYNTHETIC_PREFIX if self.synthetic else "") + "sha256:" + digest


def task_text_of(grammar: str) -> str:
    """The instruction the grammar's `task` rule shows, without its "Your task is to: " lead."""
    marker = "Your task is to: "
    start = grammar.index(marker) + len(marker)
    end = grammar.index('"', start)
    return json.loads('"' + grammar[start:end] + '"').rstrip(".")


@cache
def alfworld_logic() -> tuple[str, str]:
    """(domain, grammar template) from the installed alfworld wheel."""
    try:
        import alfworld
    except ImportError as err:  # pragma: no cover - depends on the install
        raise ImportError("ALFWorld needs the alfworld extra: pip install 'hiper-bench[alfworld]'") from err
    data = Path(alfworld.__file__).parent / "data"
    return (data / "alfred.pddl").read_text(), (data / "alfred.twl2").read_text()


def make_game(pddl_problem: str, task_text: str, walkthrough: list[str]) -> dict:
    """A game.tw-pddl dict for a bundled task: shared domain and grammar, the task's own text."""
    domain, grammar = alfworld_logic()
    return {
        "pddl_domain": domain,
        "grammar": grammar.replace("UNKNOWN GOAL", task_text, 1),
        "pddl_problem": pddl_problem,
        "solvable": True,
        "walkthrough": list(walkthrough),
    }


def bundled_path(split: str) -> Path:
    return Path(str(resources.files("hiper_envs.alfworld") / "data" / f"{split}.jsonl.xz"))


def _bundled_records(split: str) -> tuple[dict, ...]:
    path = bundled_path(split)
    try:
        with lzma.open(path, "rt", encoding="utf-8") as fh:
            return tuple(json.loads(line) for line in fh if line.strip())
    except FileNotFoundError as err:
        raise FileNotFoundError(f"bundled ALFWorld data file is missing: {path}") from err
    except (lzma.LZMAError, EOFError, json.JSONDecodeError, UnicodeDecodeError) as err:
        raise ValueError(f"bundled ALFWorld data file is corrupt: {path} ({err})") from err


def record_to_task(record: dict) -> AlfworldTask:
    spec = TaskSpec(
        record["task_type"],
        record["pddl_params"]["object_target"],
        record["pddl_params"].get("parent_target", ""),
        record["pddl_params"].get("toggle_target", ""),
    )
    game = make_game(record["pddl_problem"], record["task_text"], record["walkthrough"])
    return AlfworldTask(record["task_id"], spec, game, synthetic=True)


def load_tasks(split: str, task_types: tuple[str, ...] = TASK_TYPES, data_dir: str | None = None) -> list[AlfworldTask]:
    """Every task of a split, in a fixed order (sorted ids), filtered to `task_types`."""
    data_dir = data_dir if data_dir is not None else _data_dir_from_env()
    return [t for t in _split_tasks(split, data_dir) if t.spec.task_type in task_types]


@cache
def _split_tasks(split: str, data_dir: str | None) -> tuple[AlfworldTask, ...]:
    """A split's tasks, read once per process: the games are large (about 0.7 MB each with the
    grammar) and never changed, and an env host keeps hundreds of envs of one split."""
    if data_dir is None:
        tasks = [record_to_task(rec) for rec in _bundled_records(split)]
    else:
        tasks = _load_tree(Path(data_dir), split)
    return tuple(sorted(tasks, key=lambda t: t.task_id))


def _data_dir_from_env() -> str | None:
    """$ALFWORLD_DATA when it holds the real dataset. Importing alfworld sets the variable to an
    empty cache folder when it is unset, so a value without `json_2.1.1` means "not set"."""
    value = os.environ.get(DATA_ENV_VAR)
    return value if value and (Path(value) / "json_2.1.1").is_dir() else None


def split_dir(data_dir: Path, split: str) -> Path:
    root = data_dir / "json_2.1.1" if (data_dir / "json_2.1.1").is_dir() else data_dir
    path = root / split
    if not path.is_dir():
        raise FileNotFoundError(f"ALFWorld split folder not found: {path}")
    return path


def _load_tree(data_dir: Path, split: str) -> list[AlfworldTask]:
    """The original loader's rules: skip movable/Sliced paths, missing games and unsolvable ones."""
    root = split_dir(data_dir, split)
    tasks = []
    for traj_path in sorted(root.rglob("traj_data.json")):
        folder = traj_path.parent
        if "movable" in str(folder) or "Sliced" in str(folder):
            continue
        game_path = folder / "game.tw-pddl"
        if not game_path.exists():
            continue
        traj = _read_json(traj_path)
        game = _read_json(game_path)
        if not game.get("solvable", False):
            continue
        params = traj["pddl_params"]
        spec = TaskSpec(traj["task_type"], params["object_target"], params.get("parent_target", ""),
                        params.get("toggle_target", ""))
        task_id = folder.relative_to(root).as_posix()
        tasks.append(AlfworldTask(task_id, spec, game, synthetic=False))
    return tasks


def _read_json(path: Path) -> dict:
    try:
        return json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise ValueError(f"corrupt ALFWorld data file: {path} ({err})") from err
