"""The shipped verl configs compose with verl's own and pass its checks, and the dataset rows we write
are read by verl's dataset as the agent loop expects them (runs in the verl environment)."""

from __future__ import annotations

from pathlib import Path

import pytest

pytest.importorskip("verl")

import gymnasium as gym  # noqa: E402
from hydra import compose, initialize_config_dir  # noqa: E402
from omegaconf import OmegaConf  # noqa: E402
from verl.trainer.ppo.utils import need_critic, need_reference_policy  # noqa: E402
from verl.utils.config import validate_config  # noqa: E402
from verl.utils.dataset.rl_dataset import RLHFDataset  # noqa: E402

from harness.on_verl import LOOP_NAME  # noqa: E402
from harness.on_verl.data import main as write_data  # noqa: E402
from harness.on_verl.trainer import hiper_config  # noqa: E402
from harness.training.tiny import bpe_tokenizer, build_tiny_model  # noqa: E402

CONFIGS = Path(__file__).resolve().parents[2] / "harness" / "on_verl" / "configs"
LEAVES = sorted(p.stem for p in CONFIGS.glob("hiper_*_qwen2.5-*.yaml"))


@pytest.fixture(scope="module")
def tiny_model(tmp_path_factory) -> Path:
    """A local model for verl's checks, which load the model's config (nothing may be downloaded)."""
    return build_tiny_model({"model_type": "qwen2", "hidden_size": 32, "intermediate_size": 64,
                             "num_hidden_layers": 2, "num_attention_heads": 4, "num_key_value_heads": 2},
                            ["go to the shelf", "take the mug"], tmp_path_factory.mktemp("model"), 0)


def test_a_config_per_model_and_env():
    assert LEAVES == ["hiper_alfworld_qwen2.5-1.5b", "hiper_alfworld_qwen2.5-7b", "hiper_webshop_qwen2.5-1.5b",
                      "hiper_webshop_qwen2.5-7b"]


@pytest.mark.parametrize("name", LEAVES)
def test_every_config_composes_and_passes_verls_checks(name, tiny_model, monkeypatch):
    monkeypatch.chdir(CONFIGS.parents[2])  # the configs name their files from the repository root
    with initialize_config_dir(config_dir=str(CONFIGS), version_base=None):
        config = compose(config_name=name, overrides=[f"actor_rollout_ref.model.path={tiny_model}"])
    OmegaConf.resolve(config)
    assert need_critic(config) and config.trainer.v1.trainer_mode == "hiper"
    assert config.trainer.n_gpus_per_node == 4 and config.actor_rollout_ref.rollout.name == "vllm"
    assert config.actor_rollout_ref.actor.strategy == "fsdp"
    validate_config(config=config, use_reference_policy=need_reference_policy(config), use_critic=need_critic(config))
    cfg = hiper_config(config)
    env = "WebShop" if "webshop" in name else "ALFWorld"
    assert cfg.env_id == f"HiPER/{env}-v0" and cfg.algorithm == "hiper" and cfg.lam_seg == 0.95
    assert cfg.keep_penalty == (3.5 if env == "WebShop" else 0.3)  # the released runs' KEEP penalties
    assert config.data.train_files == f"data/{env.lower()}_train.parquet"


def test_dataset_rows_reach_the_agent_loop_through_verls_dataset(tmp_path):
    out = tmp_path / "rows.parquet"
    write_data(["--env", "HiPER/ALFWorld-v0", "--split", "valid_seen", "--episodes", "150", "--seed", "7",
                "--out", str(out)])
    tokenizer = bpe_tokenizer(["HiPER/ALFWorld-v0 valid_seen pick_and_place"], vocab_size=300)
    dataset = RLHFDataset(str(out), tokenizer, OmegaConf.create({"max_prompt_length": 256, "return_raw_chat": True,
                                                                 "cache_dir": str(tmp_path / "cache")}))
    task_ids = gym.make("HiPER/ALFWorld-v0", split="valid_seen").unwrapped.task_ids
    assert len(dataset) == 150
    for i in (0, 139, 140):
        row = dataset[i]
        assert row["agent_name"] == LOOP_NAME
        assert row["extra_info"]["task_id"] == task_ids[i % 140] and row["extra_info"]["seed"] == 7 + i


def test_the_data_command_refuses_an_unknown_split(tmp_path, capsys):
    with pytest.raises(SystemExit) as exited:
        write_data(["--env", "HiPER/WebShop-v0", "--split", "nope", "--out", str(tmp_path / "x.parquet")])
    assert exited.value.code == 2 and "nope" in capsys.readouterr().err
    assert not (tmp_path / "x.parquet").exists()
