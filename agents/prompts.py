"""Prompt builders for the LLM agents: task, recent history, current observation, admissible actions.

The text is ours. Like the HiPER paper's prompt it shows the task, the step, the last `history`
observation/action pairs, the current observation, the current subgoal and the admissible actions.
Each env family gets a short guide; an env we do not know gets a generic one.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Sequence
from pathlib import Path

from agents.backends import Message

ALFWORLD_GUIDE = (
    "You control an agent in a text-based household. Rooms hold receptacles (tables, drawers, fridges, "
    "sinks, microwaves, lamps...) and objects. Move with 'go to', then take, put, open, close, heat, "
    "cool, clean, use or examine things. Only the listed admissible actions work."
)
WEBSHOP_GUIDE = (
    "You shop on a web store for a user. Search for products, open a promising one, choose the options "
    "the instruction asks for, and click Buy Now when the product matches. Price limits matter. "
    "Only the listed admissible actions work: click[...] exactly as listed, and search[<query>] with your "
    "own words in place of <query>."
)
GENERIC_GUIDE = "You act in a text environment to accomplish a task. Only the listed admissible actions work."

GUIDES = {
    "HiPER/ALFWorld-v0": ALFWORLD_GUIDE,
    "HiPER/WebShop-v0": WEBSHOP_GUIDE,
    "HiPER/WebShop-Browser-v0": WEBSHOP_GUIDE,
}

REACT_FORMAT = (
    "Think briefly inside <think>...</think>, then give exactly one admissible action inside "
    "<action>...</action>."
)
PLAN_EXECUTE_FORMAT = (
    "Decide whether to keep the current subgoal or switch to a new one, then act:\n"
    "<switch>KEEP or SWITCH</switch>\n<subgoal>a short subgoal</subgoal>\n<action>one admissible action</action>\n"
    "SWITCH when the current subgoal is done or wrong; with KEEP the subgoal stays as it is. "
    "At the first step there is no subgoal yet, so you must SWITCH."
)


def guide_for(env_id: str) -> str:
    """The guide for `env_id` (a `module:` prefix is ignored), or the generic one."""
    return GUIDES.get(env_id.rsplit(":", 1)[-1], GENERIC_GUIDE)


class History:
    """The last `k` (observation, action) pairs of an episode, oldest first."""

    def __init__(self, k: int):
        self.pairs: deque[tuple[str, str]] = deque(maxlen=max(0, int(k)))

    def add(self, obs: str, action: str) -> None:
        self.pairs.append((obs, action))

    def render(self) -> str:
        if not self.pairs:
            return "(none yet)"
        return "\n".join(f"Observation: {obs.strip()}\nAction: {action}" for obs, action in self.pairs)


def build_prompt(guide: str, task: str, step: int, history: History, obs: str,
                 admissible: Sequence[str], output_format: str, subgoal: str | None = None,
                 show_subgoal: bool = False) -> list[Message]:
    """System guide plus one user turn laying out the state; the format instruction comes last."""
    parts = [
        f"Task: {task}",
        f"Step: {step}",
        f"Recent history (last {history.pairs.maxlen}):\n{history.render()}",
        f"Current observation:\n{obs.strip()}",
    ]
    if show_subgoal:
        parts.append(f"Current subgoal: {subgoal if subgoal is not None else 'None'}")
    parts += ["Admissible actions:\n" + "\n".join(f"- {a}" for a in admissible), output_format]
    return [{"role": "system", "content": guide}, {"role": "user", "content": "\n\n".join(parts)}]


TEMPLATE_FIELDS = ("task_description", "step_count", "history_length", "action_history", "current_step",
                   "current_observation", "current_subgoal", "admissible_actions")


class PromptTemplate:
    """A prompt file in the HiPER authors' template fields, filled as their env manager fills them.

    Fields (Python `str.format` syntax; write `{{` and `}}` for literal braces):
    `{task_description}`; `{step_count}` steps taken so far; `{history_length}` pairs shown;
    `{action_history}` those pairs, oldest first, one line each,
    `[Observation n: '...', Action n: '...']` with n the step they belong to; `{current_step}` =
    step_count + 1; `{current_observation}`; `{current_subgoal}` (plan-execute agents; "None"
    before the first); `{admissible_actions}` each quoted in single quotes, joined by a newline and
    a space, without `help`. The filled text is the one user message of the prompt.
    """

    def __init__(self, text: str, source: str = "template"):
        self.text = text
        try:  # every field must be known: a typo would otherwise fail at the first step of a run
            text.format_map({name: "" for name in TEMPLATE_FIELDS})
        except KeyError as err:
            raise ValueError(f"{source}: unknown template field {err}; fields: {', '.join(TEMPLATE_FIELDS)}") from None
        except (ValueError, IndexError) as err:
            raise ValueError(f"{source}: not a format template ({err})") from None

    @classmethod
    def read(cls, path: str) -> PromptTemplate:
        try:
            return cls(Path(path).read_text(encoding="utf-8"), str(path))
        except (OSError, UnicodeDecodeError) as err:
            raise ValueError(f"cannot read prompt template {path}: {err}") from None

    def messages(self, task: str, step: int, history: History, obs: str, admissible: Sequence[str],
                 subgoal: str | None = None) -> list[Message]:
        first = step - len(history.pairs)
        lines = [f"[Observation {first + j + 1}: '{o}', Action {first + j + 1}: '{a}']"
                 for j, (o, a) in enumerate(history.pairs)]
        fields = {"task_description": task, "step_count": step, "history_length": len(history.pairs),
                  "action_history": "\n".join(lines), "current_step": step + 1, "current_observation": obs,
                  "current_subgoal": subgoal if subgoal is not None else "None",
                  "admissible_actions": "\n ".join(f"'{a}'" for a in admissible if a != "help")}
        return [{"role": "user", "content": self.text.format_map(fields)}]
