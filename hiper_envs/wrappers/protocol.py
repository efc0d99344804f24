"""How a model's reply becomes an env action: the published protocol and the strict one.

Two protocols, chosen by name wherever a reply is read (the `PlanExecute` wrapper, the `react` and
`hiper` agents, training rollouts) and recorded with every result row:

`published` (the default) reads replies as the HiPER and verl-agent code does, so a model trained
under the authors' protocol scores here as it scored there:
- the action is the text between the first `<action>` and the first `</action>` of the lowercased
  reply, stripped; without both tags, the last `tail` characters of the lowercased reply are sent
  (30 for ALFWorld and KeyDoor, 20 for WebShop), which the env will usually reject;
- the env is stepped with that action in every case: validity only decides the invalid-format
  penalty (training) and `format_valid` (evaluation);
- a reply is valid when it has the action pair, no character in U+4E00..U+9FFF (CJK ideographs),
  and for a flat agent a `<think>...</think>` pair, for a plan-execute agent a `<switch>` pair whose
  body, upper-cased, is KEEP or SWITCH and a `<subgoal>` pair (on KEEP too). These tags are matched
  as written (lowercase names), the first opening tag with the first closing one;
- the subgoal the agent carries into its next prompt is the one it last wrote (on KEEP, the one it
  re-emitted).

`strict` (our earlier protocol, friendlier to prompting): tags in any case and spacing, the last
`<action>` of a flat reply (else its last line), no lowercasing; for plan-execute replies a repeated
tag, an unknown switch or SWITCH without a subgoal is an error, and the wrapper does not step the
env on a malformed reply but answers with an observation that says what was wrong.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from hiper_envs.wrappers.plan_execute import find_tag

PROTOCOLS = ("published", "strict")
DEFAULT_PROTOCOL = "published"
CJK = re.compile("[\u4e00-\u9fff]")
MAX_ACTION_CHARS = 200  # strict: a flat action longer than this is cut (a runaway reply is no action)


def check_protocol(protocol: str) -> str:
    if protocol not in PROTOCOLS:
        raise ValueError(f"unknown reply protocol {protocol!r}; choose from {', '.join(PROTOCOLS)}")
    return protocol


def tail_chars(env_id: str) -> int:
    """Characters of a reply without an action pair that the published protocol sends: 20 on WebShop
    (its projection's), 30 elsewhere (ALFWorld's; KeyDoor has no published code and takes ALFWorld's)."""
    return 20 if "WebShop" in env_id else 30


def first_pair(text: str, name: str) -> str | None:
    """The text between the first `<name>` and the first `</name>` of `text` (empty when the closing
    tag comes first), or None without both tags."""
    start, end = text.find(f"<{name}>"), text.find(f"</{name}>")
    if start < 0 or end < 0:
        return None
    return text[start + len(name) + 2:end]


@dataclass(frozen=True)
class Reply:
    """A reply as read by a protocol: what the env is stepped with, and how the reply is judged.

    `switch` is True for SWITCH, False for KEEP, None when the reply names neither (plan-execute
    replies only); `subgoal` is the reply's `<subgoal>` body, when it has one.
    """

    action: str
    valid: bool
    switch: bool | None = None
    subgoal: str | None = None


def _published_action(reply: str, tail: int) -> tuple[str, bool]:
    lowered = reply.lower()
    body = first_pair(lowered, "action")
    if body is None:
        return lowered[-tail:] if tail > 0 else "", False
    return body.strip(), True


def read_flat(reply: str, protocol: str = DEFAULT_PROTOCOL, tail: int = 30) -> Reply:
    """A flat (ReAct) agent's reply: `<think>...</think>` then `<action>...</action>`."""
    if protocol == "strict":
        tagged = [a for a in find_tag(reply, "action") if a]
        lines = reply.strip().splitlines() or [""]
        action = " ".join((tagged[-1] if tagged else lines[-1]).split())[:MAX_ACTION_CHARS]
        return Reply(action, bool(tagged))
    action, valid = _published_action(reply, tail)
    valid = valid and first_pair(reply, "think") is not None and not CJK.search(reply)
    return Reply(action, valid)


def read_plan_execute(reply: str, tail: int = 30) -> Reply:
    """A plan-execute reply under the published protocol (the strict one is `parse_plan_execute`)."""
    action, valid = _published_action(reply, tail)
    switch_body = first_pair(reply, "switch")
    switch_word = None if switch_body is None else switch_body.strip().upper()
    switch = {"SWITCH": True, "KEEP": False}.get(switch_word)
    subgoal = first_pair(reply, "subgoal")
    subgoal = None if subgoal is None else subgoal.strip()
    valid = valid and switch is not None and subgoal is not None and not CJK.search(reply)
    return Reply(action, valid, switch, subgoal)


__all__ = ["DEFAULT_PROTOCOL", "PROTOCOLS", "Reply", "check_protocol", "first_pair", "read_flat",
           "read_plan_execute", "tail_chars"]
