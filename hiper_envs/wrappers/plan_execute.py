"""The plan-execute format of hierarchical agents (docs/envs.md): its one parser and the `PlanExecute` wrapper.

Agents, the wrapper and the trainer all import `parse_plan_execute` from here, so a model output is
judged the same way wherever it is read.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import gymnasium as gym

# Outputs longer than this are rejected before any regex runs: a model (or an attacker) cannot make
# parsing slow, and no sane plan-execute output is this long.
MAX_OUTPUT_CHARS = 8_000
MAX_FIELD_CHARS = 500
DEFAULT_INVALID_PENALTY = 0.1  # the released runs' invalid-format penalty

_TAG_CACHE: dict[str, re.Pattern[str]] = {}
_OUR_TAG = re.compile(r"<\s*/?\s*(?:switch|subgoal|action)\b", re.IGNORECASE)


def find_tag(text: str, name: str) -> list[str]:
    """Every `<name>...</name>` body in `text` (case-insensitive tag, body stripped), in order.

    A final opening tag whose closing tag was cut off (generation hit its token limit) counts too,
    up to the end of its line: truncated output is common and harmless to accept.
    """
    pattern = _TAG_CACHE.get(name)
    if pattern is None:
        # Tempered, non-nested body: no catastrophic backtracking on long or adversarial inputs.
        pattern = re.compile(
            rf"<\s*{name}\s*>(?P<body>(?:(?!<\s*/?\s*{name}\s*>).)*?)(?:(?P<close><\s*/\s*{name}\s*>)|$)",
            re.IGNORECASE | re.DOTALL,
        )
        _TAG_CACHE[name] = pattern
    bodies = []
    for match in pattern.finditer(text):
        body = match.group("body")
        if match.group("close") is None:
            body = body.split("\n", 1)[0]  # unclosed tag at the end: keep its first line only
        bodies.append(body.strip())
    return bodies


@dataclass(frozen=True)
class PlanStep:
    """One parsed plan-execute decision. `subgoal` is None when a KEEP left it out."""

    switch: bool
    subgoal: str | None
    action: str


class FormatError(ValueError):
    """The output is not in the plan-execute format; the message says why, for the agent to read."""


def _one(text: str, name: str, required: bool) -> str | None:
    bodies = find_tag(text, name)
    if len(bodies) > 1:
        raise FormatError(f"expected one <{name}> tag, found {len(bodies)}")
    if not bodies or not bodies[0]:
        if required:
            raise FormatError(f"missing or empty <{name}>...</{name}>")
        return None
    body = " ".join(bodies[0].split())  # newlines and runs of spaces inside a field mean nothing
    if len(body) > MAX_FIELD_CHARS:
        raise FormatError(f"<{name}> is longer than {MAX_FIELD_CHARS} characters")
    if _OUR_TAG.search(body):  # other angle brackets are fine: "search[shoes < 40 dollars]"
        raise FormatError(f"<{name}> contains a plan-execute tag")
    return body


def parse_plan_execute(output: str | Mapping[str, Any]) -> PlanStep:
    """Parse `<switch>KEEP|SWITCH</switch><subgoal>..</subgoal><action>..</action>` (or a dict).

    Lenient on whitespace, case of KEEP/SWITCH, text around the tags and a cut-off last tag; strict
    on ambiguity (a repeated tag), tags inside fields, oversized output and unknown switch values.
    Raises `FormatError`.

    >>> parse_plan_execute("<switch> keep </switch>\\n<action>go to desk 1</action>")
    PlanStep(switch=False, subgoal=None, action='go to desk 1')
    """
    if isinstance(output, Mapping):
        missing = {"switch", "action"} - set(output)
        if missing:
            raise FormatError(f"missing keys: {', '.join(sorted(missing))}")
        output = "".join(
            f"<{key}>{output[key]}</{key}>" for key in ("switch", "subgoal", "action")
            if output.get(key) is not None
        )
    if not isinstance(output, str):
        raise FormatError(f"expected text, got {type(output).__name__}")
    if len(output) > MAX_OUTPUT_CHARS:
        raise FormatError(f"output longer than {MAX_OUTPUT_CHARS} characters")
    switch = _one(output, "switch", required=True).upper()
    if switch not in ("KEEP", "SWITCH"):
        raise FormatError(f"<switch> must be KEEP or SWITCH, got {switch[:40]!r}")
    subgoal = _one(output, "subgoal", required=switch == "SWITCH")
    action = _one(output, "action", required=True)
    return PlanStep(switch=switch == "SWITCH", subgoal=subgoal, action=action)


def advance(current_subgoal: str | None, output: str | Mapping[str, Any]) -> tuple[PlanStep, bool, str]:
    """Parse `output` and apply it to the current subgoal: `(decision, switched, subgoal)`.

    On KEEP the current subgoal is carried verbatim; the first decision (no current subgoal) always
    starts a segment and so must name a subgoal. Raises `FormatError`.
    """
    decision = parse_plan_execute(output)
    if current_subgoal is None or decision.switch:
        if decision.subgoal is None:
            raise FormatError("the first step needs a <subgoal>")
        return decision, True, decision.subgoal
    return decision, False, current_subgoal


def format_plan_execute(step: PlanStep) -> str:
    """The canonical text of a decision; `parse_plan_execute` reads it back unchanged."""
    parts = [f"<switch>{'SWITCH' if step.switch else 'KEEP'}</switch>"]
    if step.subgoal is not None:
        parts.append(f"<subgoal>{step.subgoal}</subgoal>")
    parts.append(f"<action>{step.action}</action>")
    return "\n".join(parts)


class PlanExecute(gym.Wrapper, gym.utils.RecordConstructorArgs):
    """Steps a text env with plan-execute outputs and reports the segment structure in `info`.

    Adds `switch`, `subgoal`, `segment`, `segment_step` and `format_valid` to every `info`; the
    first step always starts a segment. `protocol` says how a reply is read (`protocol.py`):

    - `published` (default): the env is always stepped, with the reply's first `<action>` body
      lowercased (or its tail); an invalid reply costs `invalid_penalty` and has `format_valid`
      False. `subgoal` is the one the reply last wrote.
    - `strict`: on KEEP the current subgoal is carried; a malformed output does not reach the inner
      env: the observation explains the error, `format_valid` and `action_valid` are False and the
      reward is `-invalid_penalty`.

    Malformed steps count towards the inner env's step limit, so a model that never gets the format
    right is still truncated. `tail` is the published protocol's fallback length (None: the inner
    env's, 20 on WebShop and 30 elsewhere).

    Example:
        >>> import gymnasium as gym, hiper_envs  # doctest: +SKIP
        >>> env = PlanExecute(gym.make("HiPER/ALFWorld-v0"))  # doctest: +SKIP
        >>> obs, info = env.reset()  # doctest: +SKIP
        >>> obs, r, term, trunc, info = env.step(
        ...     "<switch>SWITCH</switch><subgoal>find a mug</subgoal><action>look</action>")  # doctest: +SKIP
    """

    def __init__(self, env: gym.Env, invalid_penalty: float = DEFAULT_INVALID_PENALTY, protocol: str = "published",
                 tail: int | None = None):
        from hiper_envs.wrappers.protocol import check_protocol, tail_chars

        gym.utils.RecordConstructorArgs.__init__(self, invalid_penalty=invalid_penalty, protocol=protocol, tail=tail)
        gym.Wrapper.__init__(self, env)
        self.invalid_penalty = float(invalid_penalty)
        self.protocol = check_protocol(protocol)
        self.tail = tail if tail is not None else tail_chars(env.spec.id if env.spec is not None else "")
        self._subgoal: str | None = None
        self._segment = -1
        self._segment_step = 0
        self._steps = 0
        self._last_info: dict[str, Any] = {}
        self._started = False

    def _annotate(self, info: dict[str, Any], switch: bool, format_valid: bool) -> dict[str, Any]:
        return {**info, "switch": switch, "subgoal": self._subgoal or "", "segment": self._segment,
                "segment_step": self._segment_step, "format_valid": format_valid}

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None):
        obs, info = self.env.reset(seed=seed, options=options)
        self._subgoal, self._segment, self._segment_step, self._steps = None, -1, 0, 0
        self._last_info, self._started = info, True
        return obs, self._annotate(info, switch=False, format_valid=True)

    def _out_of_steps(self) -> bool:
        limit = self.env.spec.max_episode_steps if self.env.spec is not None else None
        return limit is not None and self._steps >= limit

    def _advance_segment(self, switch: bool) -> None:
        if switch:
            self._segment += 1
            self._segment_step = 0
        else:
            self._segment_step += 1

    def step(self, action: str | Mapping[str, Any]):
        if not self._started:
            raise gym.error.ResetNeeded("call reset() before step()")  # as the inner env would
        if not isinstance(action, (str, Mapping)):
            raise TypeError(f"a plan-execute reply is text (or a dict of its tags), got {type(action).__name__}")
        self._steps += 1
        if self.protocol == "published":
            return self._step_published(action)
        try:
            decision, switch, subgoal = advance(self._subgoal, action)
        except FormatError as err:
            info = {**self._last_info, "action_valid": False, "subgoal_completed": False}
            obs = f"Invalid output: {err}. Reply with <switch>KEEP|SWITCH</switch>, <subgoal>...</subgoal> and <action>...</action>."
            return obs, -self.invalid_penalty, False, self._out_of_steps(), self._annotate(info, False, False)
        self._subgoal = subgoal
        self._advance_segment(switch)
        obs, reward, terminated, truncated, info = self.env.step(decision.action)
        self._last_info = info
        truncated = truncated or (not terminated and self._out_of_steps())
        return obs, reward, terminated, truncated, self._annotate(info, switch, True)

    def _step_published(self, action: str | Mapping[str, Any]):
        from hiper_envs.wrappers.protocol import read_plan_execute

        if isinstance(action, Mapping):
            action = "".join(f"<{key}>{action[key]}</{key}>" for key in ("switch", "subgoal", "action")
                             if action.get(key) is not None)
        reply = read_plan_execute(action, self.tail)
        switch = self._segment < 0 or bool(reply.switch)
        if reply.subgoal is not None:
            self._subgoal = reply.subgoal
        self._advance_segment(switch)
        obs, reward, terminated, truncated, info = self.env.step(reply.action)
        self._last_info = info
        truncated = truncated or (not terminated and self._out_of_steps())
        reward = reward - (0.0 if reply.valid else self.invalid_penalty)
        return obs, reward, terminated, truncated, self._annotate(info, switch, reply.valid)
