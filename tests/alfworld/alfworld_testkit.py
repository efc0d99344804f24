"""Helpers shared by the ALFWorld tests (importable at collection time, unlike fixtures)."""

from hiper_envs.alfworld.dataset import load_tasks
from hiper_envs.alfworld.world import TASK_TYPES


def sample_task_ids(split: str) -> list[str]:
    """The first task of each type in a split: a sample covering all six types."""
    tasks = load_tasks(split)
    return [next(t.task_id for t in tasks if t.spec.task_type == task_type) for task_type in TASK_TYPES]


def play(env, info, policy, max_steps: int = 50):
    """Run a policy (info -> action) from the info of a reset until the episode ends."""
    transcript = []
    for _ in range(max_steps):
        action = policy(info)
        obs, reward, terminated, truncated, info = env.step(action)
        transcript.append((action, obs, reward, info))
        if terminated or truncated:
            break
    return transcript, info
