"""The GPU check of `hiper-bench train`, in one call: HAE on ALFWorld with a model of Qwen2.5-1.5B's shape.

    python bench/gpu_train.py                      # on a GPU: the 1.5B model in bfloat16
    python bench/gpu_train.py --size tiny --device cpu --iterations 1 --num-envs 2 --max-steps 2
                                                   # the same code on a CPU (the test runs this)

Nothing is downloaded. The model is randomly initialised from Qwen2.5-1.5B's configuration (28
layers, hidden 1536, MLP 8960, 12 query and 2 key/value heads, 151,936 vocabulary rows, tied
embeddings: 1.54B parameters), with a byte-level BPE tokenizer learnt here from expert ALFWorld
transcripts and padded to the model's vocabulary (`harness.training.tiny.bpe_tokenizer`). Its
replies are noise, so episodes run to the step limit and every turn is a full-length generation:
the figures are the trainer's speed, not learning.

Each configuration runs `--iterations` HAE iterations through the real `Trainer` (rollouts in env
worker processes, generation with the hf backend on the policy, scoring, the PPO update,
checkpoint), then builds a second `Trainer` on the same output directory, which resumes from the
checkpoint, and checks that every weight came back. Configurations:

    full-separate   every weight trains; the critic is a separate copy of the backbone
    lora-shared     LoRA adapters (rank 64) train; the value heads read the policy's backbone

Printed per configuration (steady state: the mean over iterations after the first, which pays
for start-up): rollout tokens/s (response tokens / rollout seconds), update tokens/s (prompt +
response tokens / update seconds, scoring included), step tokens/s (prompt + response tokens /
whole iteration: generation, scoring and update, the measure of the HiPER authors' ~2,470 tokens/s
per H100 for a 1.5B model), seconds per iteration, peak GPU memory beside the `--plan` estimate,
whether every loss was finite, and whether the checkpoint reloaded. A configuration that raises is
reported with its error and the next one still runs. `--json PATH` writes the rows.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
import time
import traceback
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import torch  # noqa: E402

from harness.training.config import TrainConfig  # noqa: E402
from harness.training.memory import GIB, plan, sequence_tokens  # noqa: E402
from harness.training.rollout import expert_demos, render  # noqa: E402
from harness.training.tiny import bpe_tokenizer, save_random_model  # noqa: E402
from harness.training.trainer import Trainer  # noqa: E402

QWEN2_5_1_5B = {"model_type": "qwen2", "hidden_size": 1536, "intermediate_size": 8960, "num_hidden_layers": 28,
                "num_attention_heads": 12, "num_key_value_heads": 2, "vocab_size": 151936,
                "max_position_embeddings": 32768, "rope_theta": 1000000.0, "rms_norm_eps": 1e-6,
                "tie_word_embeddings": True, "hidden_act": "silu"}
TINY = {"model_type": "qwen2", "hidden_size": 64, "intermediate_size": 128, "num_hidden_layers": 2,
        "num_attention_heads": 4, "num_key_value_heads": 2, "max_position_embeddings": 4096,
        "tie_word_embeddings": True}
SIZES = {"1.5b": (QWEN2_5_1_5B, 8192), "tiny": (TINY, 1024)}  # model config, BPE merges' vocabulary
CONFIGURATIONS = {"full-separate": {"critic": "separate", "lora_rank": 0},
                  "lora-shared": {"critic": "shared", "lora_rank": 64, "lora_alpha": 128}}


def base_config(args: argparse.Namespace, model_dir: str, name: str) -> TrainConfig:
    """HAE on ALFWorld at the released settings, cut to a few small iterations."""
    return TrainConfig(
        algorithm="hiper", env_id="HiPER/ALFWorld-v0", max_steps=args.max_steps, model=model_dir,
        dtype=args.dtype, device=args.device, iterations=args.iterations, num_envs=args.num_envs,
        rollout_workers=min(args.num_envs, os.cpu_count() or 1), max_new_tokens=args.max_new_tokens,
        generation_batch_size=args.num_envs, minibatch_size=args.minibatch, actor_lr=1e-6, critic_lr=1e-5,
        checkpoint_every=args.iterations, keep_checkpoints=1, eval_every=0, seed=args.seed,
        out=str(Path(args.out) / name), **CONFIGURATIONS[name])


def build_model(args: argparse.Namespace) -> str:
    """The random model and its tokenizer, learnt from expert transcripts of the training split."""
    model_config, merges = SIZES[args.size]
    directory = Path(args.out) / "model"
    if not (directory / "config.json").exists():
        probe = TrainConfig(algorithm="hiper", env_id="HiPER/ALFWorld-v0", tiny_model={}, seed=args.seed)
        texts = [render(None, messages) + reply for messages, reply in expert_demos(probe, 64, args.seed)]
        tokenizer = bpe_tokenizer(texts, merges, model_config.get("vocab_size"))
        save_random_model(model_config, tokenizer, directory, args.seed, args.dtype, args.device)
    return str(directory)


def same_weights(a: torch.nn.Module, b: torch.nn.Module) -> bool:
    sa, sb = a.state_dict(), b.state_dict()
    return sa.keys() == sb.keys() and all(torch.equal(sa[k], sb[k]) for k in sa)


def measure(args: argparse.Namespace, model_dir: str, name: str, sequence: tuple[int, int]) -> dict[str, object]:
    cfg = base_config(args, model_dir, name)
    planned = plan(cfg, sequence)
    cuda = args.device.startswith("cuda")
    if cuda:
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats()
    start = time.perf_counter()
    log = lambda line: print(f"  [{name}] {time.perf_counter() - start:6.1f} s  {line}", flush=True)  # noqa: E731
    trainer = Trainer(cfg, log=log)
    log("trainer ready")
    trainer.train()
    wall = time.perf_counter() - start
    peak = torch.cuda.max_memory_allocated() if cuda else 0
    rows = [json.loads(line) for line in (Path(cfg.out) / "metrics.jsonl").read_text().splitlines()]
    finite = all(math.isfinite(v) for row in rows for k, v in row.items() if k.startswith(("losses/", "adv/")))
    log("trained; resuming a second trainer from the checkpoint")
    resumed = Trainer(cfg, log=lambda line: None)
    reloaded = resumed.iteration == cfg.iterations and same_weights(trainer.policy, resumed.policy)
    del trainer, resumed
    steady = rows[1:] or rows
    rollout_s = sum(r["time/rollout_s"] for r in steady)
    update_s = sum(r["time/update_s"] for r in steady)
    response = sum(r["tokens/response"] for r in steady)
    tokens = response + sum(r["tokens/prompt"] for r in steady)
    return {"configuration": name, "iterations": len(rows), "turns_per_iteration": rows[-1]["rollout/env_steps"] / len(rows),
            "rollout_tokens_per_s": response / rollout_s, "update_tokens_per_s": tokens / update_s,
            "step_tokens_per_s": tokens / (rollout_s + update_s), "seconds_per_iteration": (rollout_s + update_s) / len(steady),
            "peak_memory_gib": peak / GIB, "planned_gib": planned.total / GIB, "losses_finite": finite,
            "checkpoint_reloads": reloaded, "wall_s": wall}


def main(argv: list[str] | None = None) -> list[dict[str, object]]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", choices=SIZES, default="1.5b")
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--dtype", default=None, help="default: bfloat16 on a GPU, float32 on a CPU")
    parser.add_argument("--configs", nargs="+", choices=CONFIGURATIONS, default=list(CONFIGURATIONS))
    parser.add_argument("--iterations", type=int, default=3)
    parser.add_argument("--num-envs", type=int, default=16)
    parser.add_argument("--max-steps", type=int, default=6, help="turns per episode")
    parser.add_argument("--max-new-tokens", type=int, default=128)
    parser.add_argument("--minibatch", type=int, default=8, help="turns per optimiser step")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", default="runs/gpu_train")
    parser.add_argument("--json", default=None, help="also write the rows to this JSON file")
    args = parser.parse_args(argv)
    start = time.perf_counter()
    args.dtype = args.dtype or ("bfloat16" if args.device.startswith("cuda") else "float32")
    device = torch.cuda.get_device_name() if args.device.startswith("cuda") else "cpu"
    print(f"{args.size} model, {args.dtype} on {device}; torch {torch.__version__}; "
          f"{args.num_envs} episodes x {args.max_steps} turns x {args.max_new_tokens} new tokens per iteration",
          flush=True)
    model_dir = build_model(args)
    sequence = sequence_tokens(base_config(args, model_dir, args.configs[0]))
    print(f"model and tokenizer ready after {time.perf_counter() - start:.0f} s; plans for sequences of "
          f"{sequence[0]} tokens", flush=True)
    results = []
    for name in args.configs:
        try:
            results.append(measure(args, model_dir, name, sequence))
        except Exception as error:  # noqa: BLE001  (a check reports a broken configuration and goes on)
            traceback.print_exc()
            results.append({"configuration": name, "error": f"{type(error).__name__}: {error}"})
        print(json.dumps(results[-1]), flush=True)
    header = (f"{'configuration':<14} {'rollout tok/s':>13} {'update tok/s':>12} {'step tok/s':>10} {'s/iter':>7} "
              f"{'peak GiB':>8} {'plan GiB':>8} {'finite':>6} {'reloads':>7}")
    print(header)
    for r in results:
        if "error" in r:
            print(f"{r['configuration']:<14} failed: {r['error']}")
            continue
        print(f"{r['configuration']:<14} {r['rollout_tokens_per_s']:>13.0f} {r['update_tokens_per_s']:>12.0f} "
              f"{r['step_tokens_per_s']:>10.0f} {r['seconds_per_iteration']:>7.1f} {r['peak_memory_gib']:>8.1f} "
              f"{r['planned_gib']:>8.1f} {str(r['losses_finite']):>6} {str(r['checkpoint_reloads']):>7}")
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=1))
    return results


if __name__ == "__main__":
    main()
