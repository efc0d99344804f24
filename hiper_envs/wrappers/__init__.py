"""Wrappers over the HiPER envs, each with one job. `WRAPPERS` names the presets the harness can apply."""

import functools

from hiper_envs.wrappers.plan_execute import (
    FormatError,
    PlanExecute,
    PlanStep,
    advance,
    find_tag,
    format_plan_execute,
    parse_plan_execute,
)
from hiper_envs.wrappers.protocol import (
    DEFAULT_PROTOCOL,
    PROTOCOLS,
    Reply,
    read_flat,
    read_plan_execute,
    tail_chars,
)

# Presets the harness applies by name (an agent's `wrappers`): one per reply protocol.
WRAPPERS = {"plan_execute": PlanExecute, "plan_execute_strict": functools.partial(PlanExecute, protocol="strict")}

__all__ = ["DEFAULT_PROTOCOL", "PROTOCOLS", "WRAPPERS", "FormatError", "PlanExecute", "PlanStep", "Reply", "advance",
           "find_tag", "format_plan_execute", "parse_plan_execute", "read_flat", "read_plan_execute", "tail_chars"]
