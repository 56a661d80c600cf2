"""Tollhouse vs a direct call vs LiteLLM's proxy, all against the same fake provider.

    .venv/bin/python bench/gateway_bench.py [--litellm-venv /tmp/litellm-venv] [--quick]

Starts the fake upstream (tests/fakes/provider.py), Tollhouse and, when its venv exists, LiteLLM
as subprocesses on free loopback ports; measures latency at concurrency 1 (the targets
interleaved request by request, so they share the same background load), then throughput and
server CPU per request at concurrency 32; stops every server by PID; checks that Tollhouse's
ledger holds exactly one row per request it was sent. See bench/README.md.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import secrets
import signal
import socket
import sqlite3
import subprocess
import sys
import tempfile
import time
from collections.abc import Coroutine
from contextlib import ExitStack, suppress
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import aiohttp
import psutil

REPO = Path(__file__).resolve().parent.parent
RESULTS_DIR = REPO / "bench" / "results"
MODEL = "gpt-4o-mini"
MODES = ("non-stream", "stream")
CONCURRENCY = 32
READY_TIMEOUT_S = 180.0


@dataclass(frozen=True, slots=True)
class Sizes:
    warmup: int
    sequential: int
    concurrent: int


FULL = Sizes(warmup=200, sequential=1000, concurrent=2000)
QUICK = Sizes(warmup=50, sequential=200, concurrent=200)


@dataclass(slots=True)
class Server:
    """A subprocess we started, and the only thing we ever signal."""

    name: str
    process: subprocess.Popen[bytes]
    log: Path

    def tree(self) -> list[psutil.Process]:
        root = psutil.Process(self.process.pid)
        return [root, *root.children(recursive=True)]

    def cpu_seconds(self) -> float:
        total = 0.0
        for proc in self.tree():
            try:
                times = proc.cpu_times()
            except psutil.NoSuchProcess:
                continue
            total += times.user + times.system
        return total

    def stop(self, timeout: float = 30.0) -> int | None:
        """SIGTERM (a graceful drain), then SIGKILL, to this process tree by PID."""
        if self.process.poll() is not None:
            return self.process.returncode
        try:
            children = psutil.Process(self.process.pid).children(recursive=True)
        except psutil.NoSuchProcess:
            children = []
        self.process.send_signal(signal.SIGTERM)
        try:
            code = self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()
            code = self.process.wait()
        for child in children:
            with suppress(psutil.NoSuchProcess):
                child.kill()
        return code

    def tail(self, lines: int = 30) -> str:
        return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])


@dataclass(frozen=True, slots=True)
class Target:
    name: str
    url: str
    headers: dict[str, str]
    server: Server


@dataclass(slots=True)
class Outcome:
    """Latencies in seconds of the requests that succeeded, and how many did not."""

    latencies: list[float] = field(default_factory=list)
    failures: int = 0
    first_failure: str | None = None


@dataclass(slots=True)
class Row:
    target: str
    mode: str
    c1_requests: int
    c1_p50_ms: float
    c1_p99_ms: float
    c1_mean_ms: float
    c32_requests: int
    c32_rps: float
    c32_p50_ms: float
    c32_p99_ms: float
    server_cpu_ms_per_req: float
    upstream_cpu_ms_per_req: float
    client_cpu_ms_per_req: float
    failures: int
    added_p50_ms: float | None = None
    added_p99_ms: float | None = None


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def percentile(sorted_values: list[float], p: float) -> float:
    index = min(len(sorted_values) - 1, round(p / 100 * (len(sorted_values) - 1)))
    return sorted_values[index]


def launch(name: str, argv: list[str], env: dict[str, str], workdir: Path, running: ExitStack) -> Server:
    """Start a server; ``running`` stops it on the way out, even if it never becomes ready."""
    log = workdir / f"{name}.log"
    with log.open("wb") as out:
        process = subprocess.Popen(
            argv,
            stdout=out,
            stderr=subprocess.STDOUT,
            env={**os.environ, **env},
            cwd=workdir,
            start_new_session=True,
        )
    server = Server(name, process, log)
    running.callback(server.stop)
    return server


def wait_ready(server: Server, url: str, headers: dict[str, str] | None = None) -> float:
    """Poll until ``url`` answers 200; returns the seconds it took."""
    import urllib.error
    import urllib.request

    started = time.monotonic()
    while time.monotonic() - started < READY_TIMEOUT_S:
        if server.process.poll() is not None:
            raise RuntimeError(f"{server.name} exited with {server.process.returncode}:\n{server.tail()}")
        try:
            with urllib.request.urlopen(
                urllib.request.Request(url, headers=headers or {}), timeout=2
            ) as resp:
                if resp.status == 200:
                    return time.monotonic() - started
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            pass
        time.sleep(0.2)
    raise RuntimeError(f"{server.name} not ready after {READY_TIMEOUT_S:.0f}s:\n{server.tail()}")


def start_upstream(workdir: Path, running: ExitStack) -> tuple[Server, str]:
    port = free_port()
    argv = [sys.executable, str(REPO / "tests" / "fakes" / "provider.py"), "--port", str(port), "--no-record"]
    server = launch("upstream", argv, {}, workdir, running)
    base = f"http://127.0.0.1:{port}"
    wait_ready(server, f"{base}/v1/models")
    return server, base


def start_tollhouse(
    workdir: Path, upstream: str, running: ExitStack, extra_config: str = ""
) -> tuple[Server, str, Path]:
    """``extra_config``: TOML appended to the config (the cache bench turns the cache on)."""
    port = free_port()
    data_dir = workdir / "tollhouse-data"
    data_dir.mkdir()
    config = workdir / "tollhouse.toml"
    config.write_text(
        f"""log_level = "warning"

[[providers]]
name = "fake"
protocol = "openai"
base_url = "{upstream}/v1"
api_key = "sk-bench"
models = ["*"]

[[providers]]
name = "fake-anthropic"
protocol = "anthropic"
base_url = "{upstream}"
api_key = "sk-bench"
models = ["claude-*"]
{extra_config}"""
    )
    tollhouse = Path(sys.executable).parent / "tollhouse"
    env = {"TOLLHOUSE_DATA_DIR": str(data_dir), "TOLLHOUSE_CLAUDE_CODE__ENABLED": "false"}
    argv = [str(tollhouse), "serve", "--config", str(config), "--port", str(port)]
    server = launch("tollhouse", argv, env, workdir, running)
    base = f"http://127.0.0.1:{port}"
    wait_ready(server, f"{base}/health")
    return server, base, data_dir / "tollhouse.db"


def start_litellm(
    workdir: Path, venv: Path, upstream: str, running: ExitStack
) -> tuple[Server, str, str, float]:
    """LiteLLM's proxy as in shared/research/litellm-bench.md: one worker, no DB, master key."""
    port = free_port()
    key = "sk-bench-" + secrets.token_hex(24)
    config = workdir / "litellm.yaml"
    config.write_text(
        f"""model_list:
  - model_name: {MODEL}
    litellm_params:
      model: openai/{MODEL}
      api_base: {upstream}/v1
      api_key: sk-bench
litellm_settings:
  callbacks: []
  num_retries: 0
  request_timeout: 30
  telemetry: false
general_settings:
  master_key: os.environ/LITELLM_MASTER_KEY
"""
    )
    env = {
        "LITELLM_MASTER_KEY": key,
        "LITELLM_LOCAL_MODEL_COST_MAP": "True",
        "LITELLM_LOCAL_ANTHROPIC_BETA_HEADERS": "True",
        "LITELLM_LOCAL_BLOG_POSTS": "True",
        "LITELLM_LOCAL_POLICY_TEMPLATES": "True",
        "LITELLM_LOCAL_AUTOROUTER_PRESETS": "True",
        "LITELLM_LOG": "ERROR",
    }
    argv = [
        str(venv / "bin" / "litellm"),
        "--config",
        str(config),
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
    ]
    server = launch("litellm", [*argv, "--num_workers", "1"], env, workdir, running)
    base = f"http://127.0.0.1:{port}"
    took = wait_ready(server, f"{base}/health/liveliness")
    return server, base, key, took


def litellm_version(venv: Path) -> str | None:
    found = sorted((venv / "lib").glob("python*/site-packages/litellm-*.dist-info"))
    return found[0].name.removeprefix("litellm-").removesuffix(".dist-info") if found else None


def request_body(stream: bool) -> bytes:
    body = {"model": MODEL, "messages": [{"role": "user", "content": "Say hello."}], "stream": stream}
    return json.dumps(body).encode()


async def send(
    session: aiohttp.ClientSession, target: Target, body: bytes, stream: bool, outcome: Outcome
) -> None:
    started = time.perf_counter()
    try:
        async with session.post(target.url, data=body, headers=target.headers) as response:
            payload = await response.read()
            status = response.status
    except (aiohttp.ClientError, TimeoutError) as exc:
        problem: str | None = f"{type(exc).__name__}: {exc}"
    else:
        complete = payload.rstrip().endswith(b"data: [DONE]") if stream else b'"choices"' in payload
        problem = None if status == 200 and complete else f"HTTP {status}: {payload[:300]!r}"
    if problem is None:
        outcome.latencies.append(time.perf_counter() - started)
    else:
        outcome.failures += 1
        outcome.first_failure = outcome.first_failure or problem


async def closed_loop(
    session: aiohttp.ClientSession, target: Target, body: bytes, stream: bool, requests: int, concurrency: int
) -> Outcome:
    outcome = Outcome()
    remaining = requests

    async def worker() -> None:
        nonlocal remaining
        while remaining > 0:
            remaining -= 1
            await send(session, target, body, stream, outcome)

    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return outcome


@dataclass(slots=True)
class Load:
    """The measured phases for one mode, for every target."""

    sequential: dict[str, Outcome]
    concurrent: dict[str, Outcome]
    wall_s: dict[str, float]
    server_cpu_s: dict[str, float]
    upstream_cpu_s: dict[str, float]
    client_cpu_s: dict[str, float]
    sent: dict[str, int]


async def run_mode(targets: list[Target], upstream: Server, stream: bool, sizes: Sizes) -> Load:
    body = request_body(stream)
    load = Load({}, {}, {}, {}, {}, {}, {})
    sessions = {
        t.name: aiohttp.ClientSession(
            connector=aiohttp.TCPConnector(limit=CONCURRENCY, force_close=False),
            timeout=aiohttp.ClientTimeout(total=120),
            skip_auto_headers=("User-Agent",),
        )
        for t in targets
    }
    try:
        for target in targets:
            warm = await closed_loop(sessions[target.name], target, body, stream, sizes.warmup, 8)
            if warm.failures:
                raise RuntimeError(f"{target.name} failed during warm-up: {warm.first_failure}")
            load.sent[target.name] = sizes.warmup
            load.sequential[target.name] = Outcome()
        # Concurrency 1, round robin: every target sees the same background load.
        for _ in range(sizes.sequential):
            for target in targets:
                await send(sessions[target.name], target, body, stream, load.sequential[target.name])
        for target in targets:
            load.sent[target.name] += sizes.sequential
            cpu0, up0, client0 = target.server.cpu_seconds(), upstream.cpu_seconds(), time.process_time()
            started = time.perf_counter()
            outcome = await closed_loop(
                sessions[target.name], target, body, stream, sizes.concurrent, CONCURRENCY
            )
            load.wall_s[target.name] = time.perf_counter() - started
            load.server_cpu_s[target.name] = target.server.cpu_seconds() - cpu0
            load.upstream_cpu_s[target.name] = upstream.cpu_seconds() - up0
            load.client_cpu_s[target.name] = time.process_time() - client0
            load.concurrent[target.name] = outcome
            load.sent[target.name] += sizes.concurrent
    finally:
        for session in sessions.values():
            await session.close()
    return load


def summarise(load: Load, mode: str, direct: str) -> list[Row]:
    rows: list[Row] = []
    for name, seq in load.sequential.items():
        conc = load.concurrent[name]
        lat1 = sorted(seq.latencies)
        lat32 = sorted(conc.latencies)
        served = len(lat32) + conc.failures

        def ms(seconds: float) -> float:
            return round(seconds * 1000, 3)

        rows.append(
            Row(
                target=name,
                mode=mode,
                c1_requests=len(lat1),
                c1_p50_ms=ms(percentile(lat1, 50)),
                c1_p99_ms=ms(percentile(lat1, 99)),
                c1_mean_ms=ms(sum(lat1) / len(lat1)),
                c32_requests=len(lat32),
                c32_rps=round(len(lat32) / load.wall_s[name], 1),
                c32_p50_ms=ms(percentile(lat32, 50)),
                c32_p99_ms=ms(percentile(lat32, 99)),
                server_cpu_ms_per_req=ms(load.server_cpu_s[name] / served),
                upstream_cpu_ms_per_req=ms(load.upstream_cpu_s[name] / served),
                client_cpu_ms_per_req=ms(load.client_cpu_s[name] / served),
                failures=seq.failures + conc.failures,
            )
        )
    base = next(r for r in rows if r.target == direct)
    for row in rows:
        if row is not base:
            row.added_p50_ms = round(row.c1_p50_ms - base.c1_p50_ms, 3)
            row.added_p99_ms = round(row.c1_p99_ms - base.c1_p99_ms, 3)
    return rows


def count_ledger(db: Path) -> dict[str, int]:
    with sqlite3.connect(db) as conn:
        total, ok, streamed, priced = conn.execute(
            "SELECT count(*), coalesce(sum(outcome = 'ok'), 0), coalesce(sum(stream), 0),"
            " coalesce(sum(cost_nanos > 0), 0) FROM ledger WHERE source = 'gateway'"
        ).fetchone()
    return {"rows": total, "ok": ok, "streamed": streamed, "priced": priced}


def markdown(rows: list[Row]) -> str:
    def opt(value: float | None) -> str:
        return "—" if value is None else f"{value:+.2f}"

    lines = [
        "| target | mode | c=1 p50 / p99 ms | added p50 / p99 ms | c=32 req/s | c=32 p50 / p99 ms "
        "| server CPU ms/req | upstream CPU ms/req | client CPU ms/req |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        lines.append(
            f"| {r.target} | {r.mode} | {r.c1_p50_ms:.2f} / {r.c1_p99_ms:.2f} | {opt(r.added_p50_ms)} / "
            f"{opt(r.added_p99_ms)} | {r.c32_rps:.0f} | {r.c32_p50_ms:.1f} / {r.c32_p99_ms:.1f} "
            f"| {r.server_cpu_ms_per_req:.3f} | {r.upstream_cpu_ms_per_req:.3f} "
            f"| {r.client_cpu_ms_per_req:.3f} |"
        )
    return "\n".join(lines)


def verdict(rows: list[Row]) -> dict[str, Any]:
    """The issue's targets, checked on non-streamed requests."""

    def find(target: str) -> Row | None:
        return next((r for r in rows if r.target == target and r.mode == "non-stream"), None)

    ours, theirs = find("tollhouse"), find("litellm")
    assert ours is not None and ours.added_p50_ms is not None
    checks: dict[str, Any] = {
        "cpu_ms_per_req<=1": {"value": ours.server_cpu_ms_per_req, "met": ours.server_cpu_ms_per_req <= 1.0},
        "added_p50_ms<=2": {"value": ours.added_p50_ms, "met": ours.added_p50_ms <= 2.0},
    }
    if theirs is not None:
        ratio = round(ours.c32_rps / theirs.c32_rps, 1)
        cpu_ratio = round(theirs.server_cpu_ms_per_req / ours.server_cpu_ms_per_req, 1)
        checks["throughput_vs_litellm>=10"] = {"value": ratio, "cpu_ratio": cpu_ratio, "met": ratio >= 10}
        for mode in MODES:
            pair = [
                next(r for r in rows if r.target == t and r.mode == mode) for t in ("tollhouse", "litellm")
            ]
            checks[f"throughput_ratio_{mode}"] = round(pair[0].c32_rps / pair[1].c32_rps, 1)
    return checks


def machine() -> dict[str, Any]:
    model = next(
        (
            line.split(":", 1)[1].strip()
            for line in Path("/proc/cpuinfo").read_text().splitlines()
            if line.startswith("model name")
        ),
        platform.processor(),
    )
    return {
        "cpus": os.cpu_count(),
        "cpu_model": model,
        "python": platform.python_version(),
        "loadavg_at_start": os.getloadavg(),
    }


def run_async(main: Coroutine[Any, Any, Load]) -> Load:
    try:
        import uvloop
    except ImportError:
        return asyncio.run(main)
    return uvloop.run(main)


def bench(args: argparse.Namespace) -> int:
    sizes = QUICK if args.quick else FULL
    if args.requests:
        sizes = Sizes(sizes.warmup, args.requests, args.requests)
    litellm_venv: Path = args.litellm_venv
    use_litellm = (litellm_venv / "bin" / "litellm").exists()
    if not use_litellm:
        print(f"no LiteLLM at {litellm_venv}/bin/litellm: benchmarking without it", file=sys.stderr)
    report: dict[str, Any] = {
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": machine(),
        "sizes": asdict(sizes),
        "concurrency": CONCURRENCY,
        "model": MODEL,
        "litellm": litellm_version(litellm_venv) if use_litellm else None,
    }
    with tempfile.TemporaryDirectory(prefix="gateway-bench-") as tmp, ExitStack() as running:
        workdir = Path(tmp)
        upstream, upstream_url = start_upstream(workdir, running)
        # Every request here is identical: with the cache on, all but the first would be hits.
        # This bench measures the forwarding path; bench/cache_e2e_bench.py measures the cache.
        cache = "" if args.cache else "\n[cache]\nenabled = false\n"
        tollhouse, tollhouse_url, ledger_db = start_tollhouse(workdir, upstream_url, running, cache)
        chat = "/v1/chat/completions"
        targets = [
            Target("direct", upstream_url + chat, {"authorization": "Bearer sk-bench"}, upstream),
            Target("tollhouse", tollhouse_url + chat, {}, tollhouse),
        ]
        if use_litellm:
            litellm, litellm_url, key, took = start_litellm(workdir, litellm_venv, upstream_url, running)
            report["litellm_start_s"] = round(took, 1)
            targets.append(Target("litellm", litellm_url + chat, {"authorization": f"Bearer {key}"}, litellm))
        for target in targets:
            target.headers["content-type"] = "application/json"

        rows: list[Row] = []
        sent = 0
        streamed = 0
        for mode in MODES:
            print(f"measuring {mode} ({', '.join(t.name for t in targets)}) ...", file=sys.stderr, flush=True)
            load = run_async(run_mode(targets, upstream, mode == "stream", sizes))
            for outcome in (*load.sequential.values(), *load.concurrent.values()):
                if outcome.first_failure:
                    print(f"  failure: {outcome.first_failure}", file=sys.stderr)
            rows += summarise(load, mode, "direct")
            sent += load.sent["tollhouse"]
            streamed += load.sent["tollhouse"] if mode == "stream" else 0

        time.sleep(args.settle)  # let the batched writer flush (every 200 ms) before SIGTERM
        code = tollhouse.stop()  # SIGTERM: the ledger writer drains its queue before exit
        ledger = count_ledger(ledger_db)
    report["machine"]["loadavg_at_end"] = os.getloadavg()
    report["rows"] = [asdict(r) for r in rows]
    expected = {"rows": sent, "ok": sent, "streamed": streamed, "priced": sent}
    report["ledger"] = {"sent": sent, "exit_code": code, **ledger, "complete": ledger == expected}
    report["targets"] = verdict(rows)

    RESULTS_DIR.mkdir(exist_ok=True)
    out = args.output or RESULTS_DIR / f"run-{datetime.now(UTC):%Y%m%dT%H%M%SZ}.json"
    out.write_text(json.dumps(report, indent=2) + "\n")
    print(markdown(rows))
    print()
    print(
        f"tollhouse ledger: {ledger['rows']} rows for {sent} requests sent "
        f"({ledger['ok']} ok, {ledger['streamed']} streamed, {ledger['priced']} priced) "
        f"-> {'OK' if report['ledger']['complete'] else 'ROWS MISSING OR WRONG'}"
    )
    for name, check in report["targets"].items():
        print(f"target {name}: {json.dumps(check)}")
    print(f"results: {out}")
    failures = sum(r.failures for r in rows)
    return 0 if report["ledger"]["complete"] and failures == 0 else 1


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--litellm-venv", type=Path, default=Path("/tmp/litellm-venv"), help="skipped when absent"
    )
    parser.add_argument("--quick", action="store_true", help=f"smoke run: {QUICK}")
    parser.add_argument(
        "--cache", action="store_true", help="leave the response cache on (identical requests then hit it)"
    )
    parser.add_argument("--requests", type=int, default=None, help="requests per phase (overrides the size)")
    parser.add_argument(
        "--settle", type=float, default=1.0, help="seconds between the last request and SIGTERM (default 1)"
    )
    parser.add_argument(
        "--output", type=Path, default=None, help="results JSON (default bench/results/run-*.json)"
    )
    sys.exit(bench(parser.parse_args()))


if __name__ == "__main__":
    main()
