"""Benchmark: Tollhouse's Claude Code import and reports against ccusage 20.0.24.

    .venv/bin/python bench/claude_import.py [--sessions 2000] [--ccusage PATH] [--work DIR]

Generates the synthetic data set with ``shared/research/ccusage-crosscheck/gen_big.py`` (2,000
sessions x 250 lines, 50 projects: 477 MB, 500k lines) into a scratch directory, then times,
each as a separate process under ``/usr/bin/time`` (wall seconds, peak RSS):

* cold: ``tollhouse claude daily --json`` on an empty database (imports everything);
* warm: the same report again, nothing changed;
* incremental: ten lines appended to one transcript, then the report;
* ccusage ``claude daily --json --offline`` for each (it re-reads every file every time).

Token totals of both tools are compared, so a fast wrong answer cannot pass unnoticed.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
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


def append_lines(path: Path, count: int) -> None:
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
            record["message"]["id"] = f"msg_bench_{n}"
            record["requestId"] = f"req_bench_{n}"
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
    theirs = [args.ccusage, "claude", "daily", "--json", "--offline", "-z", "UTC"]

    rows: list[tuple[str, float, int, float, int]] = []
    loads = " / ".join(f"{v:.2f}" for v in os.getloadavg())  # 1, 5, 15 minutes, before the first run
    their_cold = timed(theirs, base)
    cold = timed(report, ours)
    assert totals(cold[2]) == totals(their_cold[2]), (totals(cold[2]), totals(their_cold[2]))
    rows.append(("cold (import everything + report)", cold[0], cold[1], their_cold[0], their_cold[1]))
    their_warm = timed(theirs, base)
    warm = timed(report, ours)
    rows.append(("warm (no change + report)", warm[0], warm[1], their_warm[0], their_warm[1]))
    append_lines(next(iter(sorted((scratch / "projects").rglob("*.jsonl")))), 10)
    their_inc = timed(theirs, base)
    inc = timed(report, ours)
    assert totals(inc[2]) == totals(their_inc[2]), (totals(inc[2]), totals(their_inc[2]))
    rows.append(("incremental (10 lines appended + report)", inc[0], inc[1], their_inc[0], their_inc[1]))
    for name in ("session", "blocks"):
        ours_cmd = [str(TOLLHOUSE), "claude", name, "--json", "--timezone", "UTC", "--tier-rule", "ccusage"]
        mine = timed(ours_cmd, ours)
        their = timed([args.ccusage, "claude", name, "--json", "--offline", "-z", "UTC"], base)
        rows.append((f"warm `{name}`", mine[0], mine[1], their[0], their[1]))

    print(f"data: {args.sessions} files, {os.cpu_count()} CPUs, load average {loads}\n")
    print("| step | Tollhouse s | Tollhouse peak MB | ccusage s | ccusage peak MB | ccusage / Tollhouse |")
    print("|---|---|---|---|---|---|")
    for name, ours_s, ours_mb, their_s, their_mb in rows:
        print(f"| {name} | {ours_s:.2f} | {ours_mb} | {their_s:.2f} | {their_mb} | {their_s / ours_s:.2f}x |")


if __name__ == "__main__":
    main()
