"""The build summary as rich tables, for the CLI to print (nothing is printed here)."""

from __future__ import annotations

from rich import box
from rich.table import Table

from musegen.corpus.build import CorpusSummary
from musegen.corpus.grouping import SPLITS


def format_table(summary: CorpusSummary) -> Table:
    """One row per style: pieces per split, then bars, notes and tokens over all splits."""
    table = Table(title=f"Corpus in {summary.out_dir} ({summary.wall_s:.0f} s)",
                  box=box.SIMPLE_HEAD)
    table.add_column("style", no_wrap=True)
    for column in (*SPLITS, "bars", "notes", "tokens", "skip"):
        table.add_column(column, justify="right", no_wrap=True)
    per_style: dict[str, dict] = {}
    for row in summary.rows():
        acc = per_style.setdefault(row["style"], {"bars": 0, "notes": 0, "tokens": 0})
        acc[row["split"]] = row["pieces"]
        for key in ("bars", "notes", "tokens"):
            acc[key] += row[key]
    for style in summary.styles:
        acc = per_style.get(style["name"], {})
        table.add_row(style["name"], *(f"{acc.get(s, 0):,}" for s in SPLITS),
                      *(_count(acc.get(k, 0)) for k in ("bars", "notes", "tokens")),
                      f"{style.get('skipped', 0):,}")
    totals = summary.totals()
    table.add_section()
    table.add_row("all", *(f"{totals[s]['pieces']:,}" for s in SPLITS),
                  *(_count(totals["all"][k]) for k in ("bars", "notes", "tokens")),
                  f"{summary.n_skipped:,}", style="bold")
    return table


def _count(n: int) -> str:
    """A count in at most six characters: 12,345 / 328k / 2.30M."""
    if n < 100_000:
        return f"{n:,}"
    if n < 1_000_000:
        return f"{n / 1000:.0f}k"
    return f"{n / 1_000_000:.2f}M"


def format_skipped(summary: CorpusSummary) -> Table:
    """Skip reasons and counts, most frequent first."""
    table = Table(title="Skipped pieces")
    table.add_column("reason")
    table.add_column("pieces", justify="right")
    for reason, count in sorted(summary.skipped.items(), key=lambda kv: (-kv[1], kv[0])):
        table.add_row(reason, f"{count:,}")
    return table
