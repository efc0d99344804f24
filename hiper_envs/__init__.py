"""Gymnasium environments for multi-turn LLM agents: ALFWorld and WebShop with subgoal-aware signals.

Importing this package registers every ``HiPER/*`` id and nothing else: no engine, textworld or torch
is imported until an env is made, so ``gymnasium.make("hiper_envs:HiPER/ALFWorld-v0")`` stays cheap.
"""

from gymnasium.envs.registration import register, registry

__version__ = "0.1.0"

_ENVS = {
    # id: (entry point, max_episode_steps)
    "HiPER/ALFWorld-v0": ("hiper_envs.alfworld.env:ALFWorldEnv", 50),
    "HiPER/WebShop-v0": ("hiper_envs.webshop.env:WebShopEnv", 15),
    "HiPER/WebShop-Browser-v0": ("hiper_envs.webshop.browser_env:WebShopBrowserEnv", 15),
    # A small keys-and-doors text task made to show learning on a CPU in minutes.
    "HiPER/KeyDoor-v0": ("hiper_envs.keydoor.env:KeyDoorEnv", 30),
}

for _env_id, (_entry_point, _max_steps) in _ENVS.items():
    if _env_id in registry:
        if registry[_env_id].entry_point != _entry_point:
            raise RuntimeError(f"{_env_id} is already registered by {registry[_env_id].entry_point}")
        continue
    # Gymnasium's passive checker (1.4) crashes the first good step after a first reset that raised
    # (an unknown task id); the envs pass its full `check_env` in our tests instead.
    register(id=_env_id, entry_point=_entry_point, max_episode_steps=_max_steps, disable_env_checker=True)

ENV_IDS = tuple(_ENVS)

__all__ = ["ENV_IDS", "__version__"]
