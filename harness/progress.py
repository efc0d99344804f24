"""A progress bar for long commands: done/total, episodes/s, how many succeeded so far, ETA."""

from __future__ import annotations

import time

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn


class EpisodeProgress:
    """Counts finished episodes; `label` names what a good one is ("success", "match")."""

    def __init__(self, total: int, description: str, label: str = "success", enabled: bool = True):
        self.label = label
        self.good = self.bad = 0
        self.t0 = time.monotonic()
        self.bar = Progress(
            TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
            TextColumn("{task.fields[rate]}"), TextColumn("{task.fields[tally]}"), TextColumn("ETA"),
            TimeRemainingColumn(), console=Console(stderr=True), disable=not enabled,
        )
        self.task = self.bar.add_task(description, total=total, rate="", tally="")

    def __enter__(self) -> EpisodeProgress:
        self.bar.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.bar.stop()

    def advance(self, good: bool, errors: int = 0) -> None:
        """One episode done: `good` if it succeeded (or matched); `errors` counts harness failures."""
        self.good += bool(good)
        self.bad += not good
        done = self.good + self.bad
        rate = done / max(time.monotonic() - self.t0, 1e-9)
        tally = f"{self.label} {self.good}/{done} ({100 * self.good / done:.0f}%)"
        if errors:
            tally += f", {errors} errors"
        self.bar.update(self.task, advance=1, rate=f"{rate:.2f} ep/s", tally=tally)
