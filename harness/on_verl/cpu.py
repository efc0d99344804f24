"""verl on a CPU, for a smoke run of the whole training step (configs/hiper_alfworld_cpu.yaml).

verl 0.9.1 knows CUDA, NPU and ROCm only. This module, loaded into every verl process with
`VERL_USE_EXTERNAL_MODULES=harness.on_verl.cpu` and chosen with `VERL_PLATFORM=cpu`, adds what a
CPU needs through verl's own registries: a platform (tensors on the host, gloo collectives), the FSDP
engines registered for the `cpu` device, and the `hf` rollout (harness.on_verl.hf_rollout). verl's
resource pools count Ray's `GPU` resource only, so a CPU run gives Ray logical GPUs
(`ray_kwargs.ray_init.num_gpus`); nothing reads the CUDA_VISIBLE_DEVICES Ray then sets.

Three things cannot be reached through a registry and are replaced here, in this one place, and only
when this module is loaded (never on a GPU run):
* the process group: verl asks for `cpu:gloo,<device>:<backend>`, which on a CPU names one device twice;
* the critic's loader, which asks transformers for flash-attention 2 (a CUDA kernel) by name;
* FSDP2's offload policy for the reference model, which pins host memory (that needs an accelerator).
"""

from __future__ import annotations

import contextlib
import os
from datetime import timedelta
from types import ModuleType
from typing import Any

import torch
import torch.distributed as dist
from transformers import AutoModelForTokenClassification
from verl.plugin.platform.platform_base import PlatformBase
from verl.plugin.platform.platform_manager import PlatformRegistry


class HostDevice(ModuleType):
    """`torch.cpu`, plus the allocator calls verl makes on an accelerator's module: nothing to do here."""

    def __getattr__(self, name: str) -> Any:
        return getattr(torch.cpu, name)

    @staticmethod
    def empty_cache() -> None:
        pass

    @staticmethod
    def reset_peak_memory_stats(*_: Any) -> None:
        pass

    @staticmethod
    def memory_allocated(*_: Any) -> int:
        return 0

    memory_reserved = max_memory_allocated = max_memory_reserved = memory_allocated

    @staticmethod
    def mem_get_info(*_: Any) -> tuple[int, int]:
        return 0, 0

    @staticmethod
    def manual_seed(seed: int) -> None:
        torch.manual_seed(seed)

    manual_seed_all = manual_seed

    @staticmethod
    def get_device_name(*_: Any) -> str:
        return "CPU"


HOST = HostDevice("hiper_host_device")


@PlatformRegistry.register(platform="cpu")
class PlatformCPU(PlatformBase):
    """Tensors on the host and gloo collectives; chosen by VERL_PLATFORM=cpu, never auto-detected."""

    @property
    def device_name(self) -> str:
        return "cpu"

    @property
    def vendor_name(self) -> str:
        return "cpu"

    @property
    def device_module(self) -> ModuleType:
        return HOST

    def is_available(self) -> bool:
        return True

    def is_platform_available(self, use_smi_check: bool = False) -> bool:
        return False

    def current_device(self) -> str:  # verl moves tensors `.to(current_device())`; 0 would mean cuda:0
        return "cpu"

    def device_count(self) -> int:
        return 1

    def set_device(self, device_index: int) -> None:
        pass

    def synchronize(self, device_index: int | None = None) -> None:
        pass

    def manual_seed(self, seed: int) -> None:
        torch.manual_seed(seed)

    def manual_seed_all(self, seed: int) -> None:
        torch.manual_seed(seed)

    def set_allocator_settings(self, settings: str) -> None:
        pass

    def empty_cache(self) -> None:
        pass

    def get_device_capability(self, device_index: int = 0) -> tuple[int | None, int | None]:
        return None, None

    def communication_backend_name(self) -> str:
        return "gloo"

    def visible_devices_envvar(self) -> str:
        return "CUDA_VISIBLE_DEVICES"

    def nvtx_range(self, msg: str) -> contextlib.AbstractContextManager:
        return contextlib.nullcontext()

    def profiler_start(self) -> None:
        pass

    def profiler_stop(self) -> None:
        pass

    def ray_resource_name(self) -> str:
        return "GPU"  # the only resource verl's pools count; Ray is started with logical ones

    def ray_noset_envvars(self) -> list[str]:
        return []

    def is_ipc_supported(self) -> bool:
        return False

    def cudart(self) -> None:
        return None


def init_gloo_process_group(timeout_second: int | None = None, backend: str | None = None) -> None:
    """verl's `initialize_global_process_group_ray` with one gloo backend for the one device."""
    if not dist.is_initialized():
        dist.init_process_group(backend="cpu:gloo", rank=int(os.environ.get("RANK", 0)),
                                world_size=int(os.environ.get("WORLD_SIZE", 1)),
                                timeout=None if timeout_second is None else timedelta(seconds=timeout_second),
                                init_method=os.environ.get("DIST_INIT_METHOD"))


def load_value_model(local_path: str, torch_dtype: Any, model_config: Any, trust_remote_code: bool) -> Any:
    """verl's critic loader (a token-classification head, one label) with PyTorch's own attention."""
    return AutoModelForTokenClassification.from_pretrained(local_path, torch_dtype=torch_dtype, config=model_config,
                                                           attn_implementation="sdpa",
                                                           trust_remote_code=trust_remote_code)


def unpinned_offload_policy(offload_policy: Any) -> Any:
    """FSDP2's CPUOffloadPolicy with host memory left unpinned, whatever the caller asks."""
    return lambda pin_memory=True, **kwargs: offload_policy(pin_memory=False, **kwargs)


def install() -> None:
    """Register the engines and the `hf` rollout, and replace the three pieces above. verl's engine
    modules ask for the platform while they import, so they are imported here, after it is registered."""
    import verl.utils.model
    import verl.workers.engine.fsdp.transformer_impl as fsdp_engine
    import verl.workers.engine_workers as engine_workers
    from verl.workers.engine.base import EngineRegistry

    import harness.on_verl.hf_rollout  # noqa: F401  (registers the `hf` rollout)

    for model_type, engine in (("language_model", fsdp_engine.FSDPEngineWithLMHead),
                               ("value_model", fsdp_engine.FSDPEngineWithValueHead)):
        EngineRegistry.register(model_type=model_type, backend=["fsdp", "fsdp2"], device=["cpu"])(engine)
    engine_workers.initialize_global_process_group_ray = init_gloo_process_group
    verl.utils.model.load_valuehead_model = load_value_model
    fsdp_engine.CPUOffloadPolicy = unpinned_offload_policy(fsdp_engine.CPUOffloadPolicy)


install()
