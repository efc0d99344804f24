"""`bench/gpu_train.py` on a CPU (the same code the GPU check runs, on a tiny Qwen2), and `train --plan`."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from harness.cli import app
from harness.training.tiny import word_tokenizer

ROOT = Path(__file__).parents[2]


def load_bench(name: str):
    spec = importlib.util.spec_from_file_location(name, ROOT / "bench" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.slow
def test_gpu_check_runs_on_cpu_with_a_tiny_config(tmp_path: Path) -> None:
    gpu_train = load_bench("gpu_train")
    rows = gpu_train.main(["--size", "tiny", "--device", "cpu", "--iterations", "2", "--num-envs", "2",
                           "--max-steps", "2", "--max-new-tokens", "8", "--out", str(tmp_path),
                           "--json", str(tmp_path / "rows.json")])
    assert [r["configuration"] for r in rows] == ["full-separate", "lora-shared"]
    for row in rows:
        assert "error" not in row, row
        assert row["losses_finite"] and row["checkpoint_reloads"]
        assert row["iterations"] == 2 and row["turns_per_iteration"] == 4
        assert row["rollout_tokens_per_s"] > 0 and row["update_tokens_per_s"] > 0
        assert row["step_tokens_per_s"] < min(row["rollout_tokens_per_s"] * 1e6, row["update_tokens_per_s"])
        assert 0 < row["planned_gib"] < 1
    assert json.loads((tmp_path / "rows.json").read_text()) == rows
    # the tokenizer is a ChatML byte-level BPE learnt here: the prompt is rendered through its template
    tokenizer_config = json.loads((tmp_path / "model" / "tokenizer_config.json").read_text())
    assert "<|im_start|>" in str(tokenizer_config.get("chat_template", "")) or \
        (tmp_path / "model" / "chat_template.jinja").exists()


def test_bpe_tokenizer_pads_to_the_model_vocabulary_and_round_trips() -> None:
    from harness.training.tiny import bpe_tokenizer

    tok = bpe_tokenizer(["<action>go to cabinet 1</action> you see a cabinet 1"] * 20, 300, 1000)
    assert len(tok) == 1000
    ids = [5, 400, 999, 17]  # learnt and filler ids: a random model's samples read back as sampled
    assert tok(tok.decode(ids), add_special_tokens=False)["input_ids"] == ids


def _model_dir(tmp_path: Path, config: dict) -> Path:
    """A local model directory with `config` and a small tokenizer, no weights (--plan reads none)."""
    from transformers import AutoConfig

    directory = tmp_path / "model"
    kwargs = dict(config)
    AutoConfig.for_model(kwargs.pop("model_type"), **kwargs).save_pretrained(directory)
    word_tokenizer(["user : go north key door"]).save_pretrained(directory)
    return directory


QWEN_7B = {"model_type": "qwen2", "hidden_size": 3584, "intermediate_size": 18944, "num_hidden_layers": 28,
           "num_attention_heads": 28, "num_key_value_heads": 4, "vocab_size": 152064}


def test_plan_refuses_a_config_that_cannot_fit_the_device(tmp_path: Path) -> None:
    model = _model_dir(tmp_path, QWEN_7B)
    config = tmp_path / "c.yaml"
    config.write_text(yaml.safe_dump({"env_id": "HiPER/KeyDoor-v0", "model": str(model), "device": "cpu",
                                      "dtype": "float32", "critic": "separate", "minibatch_size": 4,
                                      "out": str(tmp_path / "run")}))
    result = CliRunner().invoke(app, ["train", str(config), "--plan"])
    assert result.exit_code == 2, result.output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error:") and "GiB but cpu has" in lines[0]
    # 7.6B float32 parameters, a frozen reference and a separate critic: the plan shows each part
    table = result.stdout
    parameters = float(table.split("parameters")[1].split()[0])
    assert 80 < parameters < 95  # (7.6B + 7.6B + 7.1B) x 4 bytes
    assert not (tmp_path / "run").exists()  # a plan writes nothing


def test_plan_of_a_config_that_fits_prints_each_part(tmp_path: Path) -> None:
    config = ROOT / "harness" / "configs" / "train" / "smoke-keydoor-hiper.yaml"
    result = CliRunner().invoke(app, ["train", str(config), "--plan", "--out", str(tmp_path / "run")])
    assert result.exit_code == 0, result.output
    for part in ("parameters", "gradients", "optimizer", "activations", "generation", "total", "visible (cpu)"):
        assert part in result.stdout
    assert not (tmp_path / "run").exists()
