"""Wrappers over the HiPER envs, each with one job. `WRAPPERS` names the presets the harness can apply."""

from hiper_envs.wrappers.plan_execute import (
    FormatError,
    PlanExecute,
    PlanStep,
    advance,
    find_tag,
    format_plan_execute,
    parse_plan_execute,
)

WRAPPERS = {"plan_execute": PlanExecute}

__all__ = ["WRAPPERS", "FormatError", "PlanExecute", "PlanStep", "advance", "find_tag", "format_plan_execute",
           "parse_plan_execute"]
