"""Semantic-cache lookup at 100k entries, with the embedding time reported apart.

    .venv/bin/python bench/cache_bench.py [--entries 100000] [--queries 1000] [--json out.json]

Three numbers, because they cost different things:
  search   VectorIndex.search over one scope holding every entry (the worst case: in service a
           scope is one project + model + parameters and is usually far smaller)
  lookup   SemanticCache.lookup with the vector already computed: the thread hop, the search,
           the record fetch and the meaning guard, i.e. everything but the embedding
  embed    MiniLMEmbedder.embed per prompt (tokenise + numpy forward), measured on its own
Plus the plain ``X @ q`` scan for reference. Half the queries are near-duplicates of stored
entries (hits), half are random (misses).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import time
from pathlib import Path
from typing import Any

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")  # numpy reads it once, at import: see bench/CACHE.md

import numpy as np
import orjson

from tollhouse.cache.entry import CachedEntry
from tollhouse.cache.semantic.index import VectorIndex
from tollhouse.cache.semantic.store import SemanticCache, SemanticQuery
from tollhouse.pricing.usage import Usage

DIM = 384
PROMPTS = [
    "How do I reverse a list in Python?",
    "What is the capital of France?",
    "Explain the difference between a process and a thread.",
    "Write a SQL query that returns the ten most recent orders per customer.",
    "Why does my React component render twice in development mode?",
    "Summarize the main points of the attached meeting notes in three bullet points.",
    "Translate 'good morning, how are you?' into Spanish and German.",
    "What does HTTP status 429 mean and how should a client handle it?",
    "Refactor this function to avoid the nested loops and explain the complexity.",
    "Is Python a compiled language?",
]


def percentiles(samples_s: list[float]) -> dict[str, float]:
    ms = sorted(s * 1000 for s in samples_s)
    return {
        "p50_ms": round(ms[len(ms) // 2], 3),
        "p99_ms": round(ms[min(len(ms) - 1, int(len(ms) * 0.99))], 3),
        "max_ms": round(ms[-1], 3),
        "mean_ms": round(statistics.fmean(ms), 3),
    }


def unit_rows(rng: np.random.Generator, n: int) -> Any:
    x = rng.standard_normal((n, DIM), dtype=np.float32)
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def queries(rng: np.random.Generator, data: Any, count: int) -> list[Any]:
    out = []
    for i in range(count):
        if i % 2 == 0:  # a near-duplicate of a stored entry: a hit
            q = data[int(rng.integers(len(data)))] + 0.005 * unit_rows(rng, 1)[0]
        else:  # anything else: a miss
            q = unit_rows(rng, 1)[0]
        out.append((q / np.linalg.norm(q)).astype(np.float32))
    return out


class _NoEmbedder:
    """The lookup path is measured with vectors computed beforehand."""

    dim = DIM
    max_tokens = 256

    def embed(self, text: str) -> Any:
        raise AssertionError("the lookup benchmark must not embed")


def bench_search(
    data: Any, qs: list[Any]
) -> tuple[dict[str, float], dict[str, float], dict[str, float], float]:
    index = VectorIndex(DIM)
    index.add_many("scope", np.arange(len(data), dtype=np.int64), data)
    hits = 0
    search: list[float] = []
    cpu: list[float] = []
    for q in qs:
        started, started_cpu = time.perf_counter(), time.thread_time()
        found = index.search("scope", q, 0.95)
        cpu.append(time.thread_time() - started_cpu)
        search.append(time.perf_counter() - started)
        hits += bool(found)
    plain: list[float] = []
    for q in qs:
        started = time.perf_counter()
        int(np.argmax(data @ q))
        plain.append(time.perf_counter() - started)
    return percentiles(search), percentiles(cpu), percentiles(plain), hits / len(qs)


async def bench_lookup(data: Any, qs: list[Any]) -> dict[str, float]:
    cache = SemanticCache(_NoEmbedder(), max_entries=len(data) + 1)
    body = orjson.dumps({"choices": [{"index": 0, "message": {"role": "assistant", "content": "cached"}}]})
    entry = CachedEntry(
        body, "/v1/chat/completions", "bench", "gpt-4o", Usage(input_tokens=20, output_tokens=5), 1
    )
    scope = "bench:scope"
    for i, vector in enumerate(data):
        await cache.store(SemanticQuery("bench", scope, f"user: stored prompt {i}", vector, True), entry)
    samples: list[float] = []
    for q in qs:
        query = SemanticQuery("bench", scope, "user: stored prompt", q, True)
        started = time.perf_counter()
        await cache.lookup(query)
        samples.append(time.perf_counter() - started)
    return percentiles(samples)


def bench_embed(rounds: int) -> dict[str, float] | None:
    try:
        from tollhouse.cache.semantic.embedder import MiniLMEmbedder
    except ImportError:
        return None
    started = time.perf_counter()
    embedder = MiniLMEmbedder()
    load_s = time.perf_counter() - started
    for prompt in PROMPTS:
        embedder.embed(f"user: {prompt}")  # warm
    samples: list[float] = []
    cpu: list[float] = []
    for _ in range(rounds):
        for prompt in PROMPTS:
            started, started_cpu = time.perf_counter(), time.thread_time()
            embedder.embed(f"user: {prompt}")
            cpu.append(time.thread_time() - started_cpu)
            samples.append(time.perf_counter() - started)
    cpu_ms = percentiles(cpu)
    return {**percentiles(samples), "cpu_p50_ms": cpu_ms["p50_ms"], "model_load_s": round(load_s, 2)}


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--entries", type=int, default=100_000)
    parser.add_argument("--queries", type=int, default=1000)
    parser.add_argument("--embed-rounds", type=int, default=10)
    parser.add_argument("--json", type=Path, help="also write the results here")
    args = parser.parse_args()

    rng = np.random.default_rng(42)
    data = unit_rows(rng, args.entries).astype(np.float32)
    qs = queries(rng, data, args.queries)
    search, search_cpu, plain, hit_rate = bench_search(data, qs)
    lookup = asyncio.run(bench_lookup(data, qs))
    embed = bench_embed(args.embed_rounds)
    results = {
        "entries": args.entries,
        "queries": args.queries,
        "dim": DIM,
        "openblas_threads": os.environ.get("OPENBLAS_NUM_THREADS"),
        "cpu_count": os.cpu_count(),
        "load_avg": [round(x, 2) for x in os.getloadavg()],
        "hit_rate": hit_rate,
        "search": search,
        "search_cpu": search_cpu,
        "lookup_excluding_embedding": lookup,
        "plain_matmul_reference": plain,
        "embed_per_prompt": embed,
    }
    print(orjson.dumps(results, option=orjson.OPT_INDENT_2).decode())
    if args.json:
        args.json.write_bytes(orjson.dumps(results, option=orjson.OPT_INDENT_2))
    target = lookup["p99_ms"] < 10
    verdict = "within" if target else "OVER"
    print(f"\nlookup p99 {lookup['p99_ms']} ms at {args.entries} entries: {verdict} the 10 ms target")


if __name__ == "__main__":
    main()
