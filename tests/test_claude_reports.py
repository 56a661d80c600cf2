"""`tollhouse claude …` reports: ccusage 20.0.24 parity on the synthetic set, and the report logic.

The expected JSON files are ccusage's own output for the same transcripts (see
tests/data/ccusage/README.md): tokens must match exactly, costs within $0.000001, and every
object must have exactly ccusage's field names.
"""

from __future__ import annotations

import json
import shutil
import time
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from click.testing import CliRunner

from tollhouse.claude_code.reports import zone_offsets
from tollhouse.cli import main

DATA = Path(__file__).parent / "data" / "ccusage"

PARITY = [
    ("daily_auto.json", ["daily"]),
    ("daily_calc.json", ["daily", "--mode", "calculate"]),
    ("daily_display.json", ["daily", "--mode", "display"]),
    ("daily_inst.json", ["daily", "--instances"]),
    ("daily_tokyo.json", ["daily", "--timezone", "Asia/Tokyo"]),
    ("weekly.json", ["weekly"]),
    ("monthly.json", ["monthly"]),
    ("session.json", ["session"]),
    ("blocks.json", ["blocks"]),
]


@pytest.fixture
def claude_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    target = tmp_path / "claude"
    shutil.copytree(DATA / "claude", target)
    monkeypatch.setenv("CLAUDE_CONFIG_DIR", str(target))
    monkeypatch.setenv("TOLLHOUSE_DATA_DIR", str(tmp_path / "data"))
    return target


def run(*args: str) -> str:
    result = CliRunner().invoke(main, ["claude", *args], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    return result.stdout


def run_json(*args: str) -> Any:
    return json.loads(run(*args, "--json"))


def assert_same(actual: Any, expected: Any, where: str = "$") -> None:
    if isinstance(expected, dict):
        assert isinstance(actual, dict), where
        assert sorted(actual) == sorted(expected), f"{where}: fields {sorted(actual)} != {sorted(expected)}"
        for key in expected:
            assert_same(actual[key], expected[key], f"{where}.{key}")
    elif isinstance(expected, list):
        assert isinstance(actual, list) and len(actual) == len(expected), f"{where}: {actual} != {expected}"
        for index, (a, e) in enumerate(zip(actual, expected, strict=True)):
            assert_same(a, e, f"{where}[{index}]")
    elif isinstance(expected, float) or (isinstance(expected, int) and "ost" in where.rsplit(".", 1)[-1]):
        assert isinstance(actual, int | float) and not isinstance(actual, bool), where
        assert abs(actual - expected) <= 1e-6, f"{where}: {actual} != {expected}"
    else:
        assert actual == expected and type(actual) is type(expected), f"{where}: {actual!r} != {expected!r}"


@pytest.mark.parametrize(("expected_file", "args"), PARITY, ids=[p[0] for p in PARITY])
def test_json_matches_ccusage(claude_dir: Path, expected_file: str, args: list[str]) -> None:
    expected = json.loads((DATA / "expected" / expected_file).read_text())
    tz = [] if "--timezone" in args else ["--timezone", "UTC"]
    assert_same(run_json(*args, *tz, "--tier-rule", "ccusage"), expected)


def test_the_data_set_covers_the_hard_cases(claude_dir: Path) -> None:
    daily = run_json("daily", "--timezone", "UTC", "--tier-rule", "ccusage")
    day1, day2 = daily["daily"]
    # costUSD (0.5) used in auto mode instead of the 0.1065 the tokens would cost
    opus = next(b for b in day1["modelBreakdowns"] if b["modelName"].startswith("claude-opus"))
    assert opus["cost"] == pytest.approx(0.5)
    # <synthetic> counts as an entry but never as a model
    assert all("<synthetic>" not in row["modelsUsed"] for row in daily["daily"])
    # the duplicated response counts once: 1000 input + 50 input for sonnet-4 that day
    sonnet = next(b for b in day1["modelBreakdowns"] if b["modelName"] == "claude-sonnet-4-20250514")
    assert sonnet["inputTokens"] == 1050
    # the 250k-input request at ccusage's marginal rule: 200k x $3 + 50k x $6 + 4000 x $15 per M
    big = next(b for b in day2["modelBreakdowns"] if b["modelName"] == "claude-sonnet-4-20250514")
    assert big["cost"] == pytest.approx(0.96, abs=1e-9)
    # the session across midnight lands on both days in UTC
    sessions = run_json("session", "--timezone", "UTC", "--tier-rule", "ccusage")["sessions"]
    crossing = next(s for s in sessions if s["sessionId"].startswith("2222"))
    assert (crossing["firstActivity"][:10], crossing["lastActivity"][:10]) == ("2025-09-01", "2025-09-02")


def test_anthropic_rule_bills_the_whole_long_request_at_the_higher_rate(claude_dir: Path) -> None:
    day2 = run_json("daily", "--timezone", "UTC", "--mode", "calculate", "--tier-rule", "anthropic")["daily"][
        1
    ]
    big = next(b for b in day2["modelBreakdowns"] if b["modelName"] == "claude-sonnet-4-20250514")
    assert big["cost"] == pytest.approx(250_000 * 6e-6 + 4000 * 22.5e-6, abs=1e-9)  # 1.59, not 0.96


def test_since_until_and_project_filters(claude_dir: Path) -> None:
    only_day2 = run_json("daily", "-z", "UTC", "--since", "20250902")
    assert [d["date"] for d in only_day2["daily"]] == ["2025-09-02"]
    only_day1 = run_json("daily", "-z", "UTC", "--until", "2025-09-01")
    assert [d["date"] for d in only_day1["daily"]] == ["2025-09-01"]
    beta = run_json("daily", "-z", "UTC", "--project", "-home-dev-code-beta-lib")
    assert beta["totals"]["inputTokens"] == 250_300
    by_path = run_json("session", "-z", "UTC", "--project", "/home/dev/code/beta.lib")
    assert [s["sessionId"] for s in by_path["sessions"]] == ["33333333-3333-4333-8333-333333333333"]


def test_readable_tables_have_totals(claude_dir: Path) -> None:
    for report in ("daily", "weekly", "monthly", "session"):
        text = run(report, "--timezone", "UTC", "--breakdown")
        assert "Total" in text and "355,770" in text, text
        assert "└─ sonnet-4" in text
    blocks = run("blocks", "--timezone", "UTC")
    assert "gap" in blocks and "38,450" in blocks


def test_warm_report_reads_no_transcript(claude_dir: Path) -> None:
    first = run_json("monthly", "-z", "UTC")
    second = run_json("monthly", "-z", "UTC")
    assert first == second


def _line(ts: datetime, mid: str, tokens: int) -> str:
    return json.dumps(
        {
            "type": "assistant",
            "sessionId": "live-session",
            "cwd": "/work/live",
            "timestamp": ts.isoformat().replace("+00:00", "Z"),
            "requestId": f"req_{mid}",
            "message": {
                "id": mid,
                "model": "claude-sonnet-4-5-20250929",
                "usage": {"input_tokens": tokens, "output_tokens": tokens, "cache_read_input_tokens": 0},
            },
        },
        separators=(",", ":"),
    )


def test_active_block_has_burn_rate_and_projection(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    root = tmp_path / "claude"
    folder = root / "projects" / "-work-live"
    folder.mkdir(parents=True)
    now = time.time()
    lines = [_line(datetime.fromtimestamp(now - 40 * 60, UTC), "m1", 1000),
             _line(datetime.fromtimestamp(now - 10 * 60, UTC), "m2", 3000)]  # fmt: skip
    (folder / "live-session.jsonl").write_text("\n".join(lines) + "\n")
    monkeypatch.setenv("CLAUDE_CONFIG_DIR", str(root))
    monkeypatch.setenv("TOLLHOUSE_DATA_DIR", str(tmp_path / "data"))
    found = run_json("blocks", "--active")["blocks"]
    assert len(found) == 1
    block = found[0]
    assert block["isActive"] is True and block["entries"] == 2 and block["totalTokens"] == 8000
    rate = block["burnRate"]
    assert rate["tokensPerMinute"] == pytest.approx(8000 / 30, rel=1e-3)
    assert rate["tokensPerMinuteForIndicator"] == pytest.approx(8000 / 30, rel=1e-3)
    cost = block["costUSD"]
    assert rate["costPerHour"] == pytest.approx(cost / 30 * 60, rel=1e-3)
    projection = block["projection"]
    assert set(projection) == {"totalTokens", "totalCost", "remainingMinutes"}
    assert projection["totalTokens"] == round(8000 + 8000 / 30 * projection["remainingMinutes"])
    text = run("blocks", "--active")
    assert "Burn Rate" in text and "Projected Usage" in text


def test_zone_offsets_split_exactly_at_dst_changes() -> None:
    zone = ZoneInfo("America/New_York")
    low = int(datetime(2025, 3, 1, tzinfo=UTC).timestamp() * 1000)
    high = int(datetime(2025, 12, 1, tzinfo=UTC).timestamp() * 1000)
    pieces = zone_offsets(zone, low, high)
    assert [offset for _, offset in pieces] == [-5 * 3_600_000, -4 * 3_600_000, -5 * 3_600_000]
    spring = datetime.fromtimestamp(pieces[0][0] / 1000, UTC)
    autumn = datetime.fromtimestamp(pieces[1][0] / 1000, UTC)
    assert spring == datetime(2025, 3, 9, 7, tzinfo=UTC)
    assert autumn == datetime(2025, 11, 2, 6, tzinfo=UTC)


def test_days_are_cut_in_the_zone_across_dst(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    root = tmp_path / "claude"
    folder = root / "projects" / "-work-live"
    folder.mkdir(parents=True)
    # 03:30 UTC is the previous evening in New York (UTC-4 in summer, UTC-5 in winter)
    stamps = [datetime(2025, 7, 10, 3, 30, tzinfo=UTC), datetime(2025, 12, 10, 4, 30, tzinfo=UTC),
              datetime(2025, 12, 10, 5, 30, tzinfo=UTC)]  # fmt: skip
    lines = [_line(ts, f"m{i}", 10) for i, ts in enumerate(stamps)]
    (folder / "s.jsonl").write_text("\n".join(lines) + "\n")
    monkeypatch.setenv("CLAUDE_CONFIG_DIR", str(root))
    monkeypatch.setenv("TOLLHOUSE_DATA_DIR", str(tmp_path / "data"))
    days = run_json("daily", "--timezone", "America/New_York")["daily"]
    assert [(d["date"], d["inputTokens"]) for d in days] == [
        ("2025-07-09", 10),
        ("2025-12-09", 10),
        ("2025-12-10", 10),
    ]
    weeks = run_json("weekly", "--timezone", "America/New_York", "--start-of-week", "monday")["weekly"]
    assert [w["week"] for w in weeks] == ["2025-07-07", "2025-12-08"]
    assert date.fromisoformat(weeks[1]["week"]).weekday() == 0
