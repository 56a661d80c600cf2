"""Readable tables for the ``tollhouse claude`` reports (the ``--json`` output is the contract;
this is for people): aligned columns, models one per line, a totals row."""

from __future__ import annotations

import re
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

from tollhouse.claude_code.reports import Row, Tokens, totals_json, usd

if TYPE_CHECKING:
    from tollhouse.claude_code.blocks import Block

_DATE_SUFFIX = re.compile(r"-\d{8}$")
_HEAD = ("Models", "Input", "Output", "Cache Create", "Cache Read", "Total Tokens", "Cost (USD)")


def short_model(model: str) -> str:
    return _DATE_SUFFIX.sub("", model.removeprefix("claude-"))


def number(value: int) -> str:
    return f"{value:,}"


def money(nanos: int) -> str:
    return f"${usd(nanos):,.2f}"


def table(headers: Sequence[str], rows: Sequence[Sequence[str]], right: set[int]) -> str:
    """Box-drawn table; cells may hold several lines; a row of ``None`` draws a rule."""
    split = [[cell.split("\n") for cell in row] for row in rows]
    widths = [len(h) for h in headers]
    for row in split:
        for i, lines in enumerate(row):
            widths[i] = max(widths[i], *(len(line) for line in lines))

    def line(cells: Sequence[str]) -> str:
        parts = [c.rjust(widths[i]) if i in right else c.ljust(widths[i]) for i, c in enumerate(cells)]
        return "│ " + " │ ".join(parts) + " │"

    def rule(left: str, mid: str, end: str) -> str:
        return left + mid.join("─" * (w + 2) for w in widths) + end

    out = [rule("┌", "┬", "┐"), line(headers), rule("├", "┼", "┤")]
    for index, row in enumerate(split):
        if index == len(split) - 1 and len(split) > 1:
            out.append(rule("├", "┼", "┤"))
        height = max(len(lines) for lines in row)
        for n in range(height):
            out.append(line([lines[n] if n < len(lines) else "" for lines in row]))
    out.append(rule("└", "┴", "┘"))
    return "\n".join(out)


def _usage_cells(label: str, models: str, tokens: Tokens) -> list[str]:
    return [
        label,
        models,
        number(tokens.input),
        number(tokens.output),
        number(tokens.cache_creation),
        number(tokens.cache_read),
        number(tokens.total),
        money(tokens.cost_nanos),
    ]


def usage_table(title: str, first: str, rows: list[Row], *, breakdown: bool, extra: str = "") -> str:
    if not rows:
        return f"{title}\n\nNo Claude Code usage found."
    body: list[list[str]] = []
    for row in rows:
        label = row.key if not row.project or first != "Session" else f"{row.key}\n{row.project}"
        models = "\n".join(f"- {short_model(m)}" for m in sorted(set(row.models_used())))
        body.append(_usage_cells(label, models or "-", row.tokens))
        if breakdown:
            for usage in row.breakdowns():
                body.append(_usage_cells(f"  └─ {short_model(usage.model)}", "", usage.tokens))
    totals = totals_json(rows)
    total = Tokens(
        totals["inputTokens"],
        totals["outputTokens"],
        totals["cacheCreationTokens"],
        totals["cacheReadTokens"],
    )
    total.cost_nanos = sum(r.tokens.cost_nanos for r in rows)
    body.append(_usage_cells("Total", "", total))
    text = f"{title}\n\n{table((first, *_HEAD), body, right={2, 3, 4, 5, 6, 7})}"
    if totals.get("unpricedModels"):
        text += "\n\nNo price for: " + ", ".join(totals["unpricedModels"]) + " (counted as $0)"
    return text + extra


def _local(ms: int, zone: ZoneInfo) -> str:
    return datetime.fromtimestamp(ms / 1000, UTC).astimezone(zone).strftime("%Y-%m-%d %H:%M")


def blocks_table(blocks: list[Block], now_ms: int, length_ms: int, zone: ZoneInfo) -> str:
    title = "Claude Code Token Usage Report - Session Blocks"
    if not blocks:
        return f"{title}\n\nNo Claude Code usage found."
    body: list[list[str]] = []
    for block in blocks:
        start = _local(block.start_ms, zone)
        if block.gap:
            hours = (block.end_ms - block.start_ms) // 3_600_000
            body.append([f"{start} ({hours}h gap)", "(inactive)", "-", "-", "-"])
            continue
        active = block.active(now_ms, length_ms)
        minutes = (block.last_ms - block.start_ms) // 60_000
        span = f"{start} ({minutes // 60}h {minutes % 60}m)"
        models = "\n".join(f"- {short_model(m)}" for m in sorted(block.models)) or "-"
        body.append(
            [
                span,
                "ACTIVE" if active else "",
                models,
                number(block.tokens.total),
                money(block.tokens.cost_nanos),
            ]
        )
        projection = block.projection(now_ms) if active else None
        if projection is not None:
            body.append(
                ["(at the current burn rate)", "PROJECTED", "", number(projection["totalTokens"]),
                 f"${projection['totalCost']:,.2f}"]
            )  # fmt: skip
    return (
        f"{title}\n\n{table(('Block Start', 'Status', 'Models', 'Tokens', 'Cost (USD)'), body, right={3, 4})}"
    )


def active_block_text(block: Block, now_ms: int) -> str:
    elapsed = (now_ms - block.start_ms) // 60_000
    remaining = max(block.end_ms - now_ms, 0) // 60_000
    lines = [
        "Current Session Block Status",
        "",
        f"Block Started:   {datetime.fromtimestamp(block.start_ms / 1000, UTC):%Y-%m-%d %H:%M:%S} UTC",
        f"Time Elapsed:    {elapsed // 60}h {elapsed % 60}m",
        f"Time Remaining:  {remaining // 60}h {remaining % 60}m",
        "",
        "Current Usage:",
        f"  Input Tokens:     {number(block.tokens.input)}",
        f"  Output Tokens:    {number(block.tokens.output)}",
        f"  Total Cost:       {money(block.tokens.cost_nanos)}",
    ]
    rate = block.burn_rate()
    if rate is not None:
        lines += [
            "",
            "Burn Rate:",
            f"  Tokens/minute:    {number(round(rate['tokensPerMinute']))}",
            f"  Cost/hour:        ${rate['costPerHour']:,.2f}",
        ]
    projection: dict[str, Any] | None = block.projection(now_ms)
    if projection is not None:
        lines += [
            "",
            "Projected Usage (if current rate continues):",
            f"  Total Tokens:     {number(projection['totalTokens'])}",
            f"  Total Cost:       ${projection['totalCost']:,.2f}",
        ]
    return "\n".join(lines)
