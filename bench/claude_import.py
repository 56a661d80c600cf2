"""Benchmark: Tollhouse's Claude Code import and reports against ccusage 20.0.24.

    .venv/bin/python bench/claude_import.py [--sessions 2000] [--ccusage PATH] [--work DIR]

Generates the synthetic data set with ``shared/research/ccusage-crosscheck/gen_big.py`` (2,000
sessions x 250 lines, 50 projects: 477 MB, 500k lines) into a scratch directory, then times,
each as a separate process under ``/usr/bin/time`` (wall seconds, peak RSS), ``--repeat`` rounds
of each step with the two tools interleaved (the VM's speed drifts), reporting medians:

* cold: ``tollhouse claude daily --json`` on an empty database (imports everything);
* warm: the same report again, nothing changed;
* incremental: ten new lines appended to one transcript, then the report;
* ccusage ``claude daily --json --offline`` for each (it re-reads every file every time);
* once each, the first ``session`` and ``blocks`` reports (they build their own roll-ups).

Token totals of both tools are compared, so a fast wrong answer cannot pass unnoticed.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
GEN = REPO.parent / "shared" / "research" / "ccusage-crosscheck" / "gen_big.py"
TOLLHOUSE = REPO / ".venv" / "bin" / "tollhouse"


def timed(command: list[str], env: dict[str, str]) -> tuple[float, int, str]:
    """(wall seconds, peak RSS in MB, stdout) of one process."""
    with tempfile.NamedTemporaryFile("r", suffix=".time") as report:
        out = subprocess.run(
            ["/usr/bin/time", "-f", "%e %M", "-o", report.name, *command],
            env=env,
            capture_output=True,
            text=True,
            check=True,
        )
        wall, rss_kb = report.read().split()[-2:]
    return float(wall), int(rss_kb) // 1024, out.stdout


def append_lines(path: Path, count: int, tag: str) -> None:
    """Ten new responses at the end of one transcript (new ids: genuinely new usage)."""
    last = None
    with path.open("rb") as handle:
        for raw in handle:
            if b'"type":"assistant"' in raw:
                last = raw
    assert last is not None
    with path.open("a") as handle:
        for n in range(count):
            record = json.loads(last)
            record["message"]["id"] = f"msg_bench_{tag}_{n}"
            record["requestId"] = f"req_bench_{tag}_{n}"
            handle.write(json.dumps(record, separators=(",", ":")) + "\n")


def totals(stdout: str) -> tuple[int, int, int, int]:
    t = json.loads(stdout)["totals"]
    return t["inputTokens"], t["outputTokens"], t["cacheCreationTokens"], t["cacheReadTokens"]


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--sessions", type=int, default=2000)
    parser.add_argument("--lines", type=int, default=250)
    parser.add_argument("--projects", type=int, default=50)
    parser.add_argument("--ccusage", default="/tmp/ccusage/node_modules/.bin/ccusage")
    parser.add_argument("--work", type=Path, default=Path(tempfile.gettempdir()) / "tollhouse-bench")
    parser.add_argument("--repeat", type=int, default=5, help="rounds per step (medians are reported)")
    args = parser.parse_args()

    data = args.work / f"big{args.sessions}" / "claude"
    if not (data / "projects").is_dir():
        sizes = [str(args.sessions), str(args.lines), str(args.projects)]
        subprocess.run([sys.executable, str(GEN), str(data), *sizes], check=True)
    # A private copy: the incremental step appends to it.
    scratch = args.work / "run" / "claude"
    shutil.rmtree(scratch.parent, ignore_errors=True)
    shutil.copytree(data, scratch)
    home = args.work / "run" / "home"
    home.mkdir(parents=True)
    base = {"PATH": "/usr/bin:/bin", "HOME": str(home), "TZ": "UTC", "CLAUDE_CONFIG_DIR": str(scratch)}
    ours = {**base, "TOLLHOUSE_DATA_DIR": str(args.work / "run" / "data")}
    report = [str(TOLLHOUSE), "claude", "daily", "--json", "--timezone", "UTC", "--tier-rule", "ccusage"]
    their_report = [args.ccusage, "claude", "daily", "--json", "--offline", "-z", "UTC"]

    rows: list[tuple[str, float, int, float, int]] = []
    loads = " / ".join(f"{v:.2f}" for v in os.getloadavg())  # 1, 5, 15 minutes, before the first run
    first = sorted((scratch / "projects").rglob("*.jsonl"))[0]

    def step(name: str, before: Callable[[], None]) -> None:
        """``repeat`` rounds, each tool once per round (interleaved: the VM's speed drifts);
        the median wall time and the largest peak memory of each."""
        mine: list[tuple[float, int, str]] = []
        theirs: list[tuple[float, int, str]] = []
        for _ in range(args.repeat):
            before()
            theirs.append(timed(their_report, base))
            mine.append(timed(report, ours))
            assert totals(mine[-1][2]) == totals(theirs[-1][2]), (totals(mine[-1][2]), totals(theirs[-1][2]))
        rows.append((
            name, statistics.median(m[0] for m in mine), max(m[1] for m in mine),
            statistics.median(t[0] for t in theirs), max(t[1] for t in theirs),
        ))  # fmt: skip

    def fresh_database() -> None:
        shutil.rmtree(args.work / "run" / "data", ignore_errors=True)

    step("cold (import everything + report)", fresh_database)
    step("warm (no change + report)", lambda: None)
    rounds = iter(range(args.repeat))
    step("incremental (10 lines appended + report)", lambda: append_lines(first, 10, str(next(rounds))))
    for name in ("session", "blocks"):
        ours_cmd = [str(TOLLHOUSE), "claude", name, "--json", "--timezone", "UTC", "--tier-rule", "ccusage"]
        mine_first = timed(ours_cmd, ours)  # once: the first such report builds its roll-up
        their = timed([args.ccusage, "claude", name, "--json", "--offline", "-z", "UTC"], base)
        rows.append((f"first `{name}`", mine_first[0], mine_first[1], their[0], their[1]))

    print(f"data: {args.sessions} files, {os.cpu_count()} CPUs, load average {loads}, {args.repeat} rounds\n")
    print("| step | Tollhouse s | Tollhouse peak MB | ccusage s | ccusage peak MB | ccusage / Tollhouse |")
    print("|---|---|---|---|---|---|")
    for name, ours_s, ours_mb, their_s, their_mb in rows:
        print(f"| {name} | {ours_s:.2f} | {ours_mb} | {their_s:.2f} | {their_mb} | {their_s / ours_s:.2f}x |")


if __name__ == "__main__":
    main()
