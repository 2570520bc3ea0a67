"""Terminal pieces shared by the sub-commands (the library itself never draws anything)."""

from __future__ import annotations

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    ProgressColumn,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)


def progress_bar(console: Console, label: str, *extra: ProgressColumn) -> Progress:
    """A bar with done/total, elapsed time and ETA; `extra` columns go before the times."""
    return Progress(TextColumn(label), BarColumn(), MofNCompleteColumn(), *extra,
                    TimeElapsedColumn(), TextColumn("ETA"), TimeRemainingColumn(),
                    console=console, refresh_per_second=2)
