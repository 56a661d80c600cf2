"""The exact cache: canonical keys, per-request directives and the in-memory LRU store."""

from __future__ import annotations

from typing import Any

import pytest

from tollhouse.cache import (
    CachedEntry,
    MemoryStore,
    contains_tool_calls,
    directive_from_headers,
    exact_key,
    is_storable,
    project_of,
)
from tollhouse.pricing.usage import Usage

CHAT = "/v1/chat/completions"


def body(**extra: Any) -> dict[str, Any]:
    return {"model": "gpt-4o", "messages": [{"role": "user", "content": "hi"}], "temperature": 0, **extra}


def entry(project: str = "default", text: str = "hello", size: int = 0) -> CachedEntry:
    payload = b'{"choices":[{"message":{"role":"assistant","content":"' + text.encode() + b'"}}]}'
    return CachedEntry(
        body=payload + b" " * size,
        endpoint=CHAT,
        project_id=project,
        model="gpt-4o",
        usage=Usage(input_tokens=10, output_tokens=5),
        cost_nanos=1234,
    )


def test_key_ignores_delivery_fields_only() -> None:
    base = exact_key("p", "gpt-4o", CHAT, body())
    same = [
        body(stream=True, stream_options={"include_usage": True}),
        body(user="u1", metadata={"a": 1}, project_id="p", timeout=3, store=True),
        {"temperature": 0, "messages": [{"content": "hi", "role": "user"}], "model": "alias"},  # key order
    ]
    for variant in same:
        assert exact_key("p", "gpt-4o", CHAT, variant) == base
    different = [
        ("q", "gpt-4o", CHAT, body()),  # project
        ("p", "gpt-4o-mini", CHAT, body()),  # served model
        ("p", "gpt-4o", "/v1/completions", body()),  # route
        ("p", "gpt-4o", CHAT, body(temperature=0.7)),
        ("p", "gpt-4o", CHAT, body(tools=[{"type": "function", "function": {"name": "f"}}])),
        ("p", "gpt-4o", CHAT, body(tool_choice="none")),
        ("p", "gpt-4o", CHAT, body(response_format={"type": "json_object"})),
        ("p", "gpt-4o", CHAT, body(max_tokens=5)),
        ("p", "gpt-4o", CHAT, body(n=2)),
        ("p", "gpt-4o", CHAT, body(messages=[{"role": "user", "content": "hi!"}])),
        ("p", "gpt-4o", CHAT, body(system="be brief")),
        ("p", "gpt-4o", CHAT, body(some_future_field=1)),  # unknown fields are assumed to matter
    ]
    keys = {exact_key(*args) for args in different}
    assert base not in keys and len(keys) == len(different)


def test_key_strips_anthropic_cache_control_markers() -> None:
    plain = {"messages": [{"role": "user", "content": [{"type": "text", "text": "hi"}]}], "max_tokens": 9}
    marked = {
        "messages": [
            {
                "role": "user",
                "content": [{"type": "text", "text": "hi", "cache_control": {"type": "ephemeral"}}],
            }
        ],
        "max_tokens": 9,
    }
    assert exact_key("p", "m", "/v1/messages", plain) == exact_key("p", "m", "/v1/messages", marked)


def test_key_carries_its_project() -> None:
    key = exact_key("team:a.b", "m", CHAT, body())
    assert project_of(key) == "team:a.b"
    assert len(key.rpartition(":")[2]) == 64


def test_directives() -> None:
    assert directive_from_headers({}).lookup and directive_from_headers({}).store
    off = directive_from_headers({"x-tollhouse-cache": "off"})
    assert (off.lookup, off.store, off.bypass) == (False, False, True)
    assert directive_from_headers({"cache-control": "no-store"}).bypass
    refresh = directive_from_headers({"x-tollhouse-cache": "refresh"})
    assert (refresh.lookup, refresh.store) == (False, True)
    assert not directive_from_headers({"cache-control": "no-cache"}).lookup
    assert directive_from_headers({"x-tollhouse-cache-ttl": "60"}).ttl_s == 60
    assert directive_from_headers({"x-tollhouse-cache-ttl": "soon"}).ttl_s is None


def test_tool_call_answers_are_not_storable() -> None:
    tool = {
        "choices": [
            {"message": {"role": "assistant", "tool_calls": [{"id": "c"}]}, "finish_reason": "tool_calls"}
        ]
    }
    assert contains_tool_calls(CHAT, tool)
    assert contains_tool_calls("/v1/messages", {"content": [{"type": "tool_use", "id": "t"}]})
    assert not contains_tool_calls("/v1/messages", {"content": [{"type": "text", "text": "x"}]})
    assert is_storable(CHAT, 200, b'{"choices":[{"message":{"content":"x"}}]}')
    assert not is_storable(CHAT, 500, b"{}")
    assert not is_storable(CHAT, 200, b"not json")
    assert not is_storable("/v1/messages", 200, b'{"type":"error","error":{}}')


def test_entry_round_trips_through_bytes() -> None:
    original = entry(text="line\nbreak")
    again = CachedEntry.from_bytes(original.to_bytes())
    assert again == original
    assert again.tokens_saved == 15


async def test_memory_store_hits_and_counts_savings() -> None:
    store = MemoryStore()
    key = exact_key("a", "gpt-4o", CHAT, body())
    assert await store.get(key) is None
    assert await store.put(key, entry("a"), ttl_s=60)
    hit = await store.get(key)
    assert hit is not None and hit.cost_nanos == 1234
    stats = (await store.stats()).as_json()
    assert stats["cache_hits"] == 1 and stats["cache_misses"] == 1
    assert stats["hit_rate"] == 0.5 and stats["total_requests"] == 2
    assert stats["cached_items"] == 1 and stats["memory_usage_bytes"] > 0
    assert stats["tokens_saved"] == 15 and stats["cost_saved_usd"] == pytest.approx(1.234e-6)


async def test_one_project_never_gets_another_projects_answer() -> None:
    store = MemoryStore()
    same_request = body()
    await store.put(exact_key("alpha", "gpt-4o", CHAT, same_request), entry("alpha", "alpha's"), ttl_s=60)
    assert await store.get(exact_key("beta", "gpt-4o", CHAT, same_request)) is None


async def test_ttl_expires() -> None:
    now = [1000.0]
    store = MemoryStore(clock=lambda: now[0])
    await store.put("p:k", entry(), ttl_s=10)
    now[0] += 9.9
    assert await store.get("p:k") is not None
    now[0] += 0.2
    assert await store.get("p:k") is None
    assert len(store) == 0


async def test_lru_bounded_by_count_and_bytes() -> None:
    store = MemoryStore(max_entries=3, max_bytes=10_000)
    for name in "abc":
        await store.put(f"p:{name}", entry(), ttl_s=60)
    await store.get("p:a")  # a is now the most recent
    await store.put("p:d", entry(), ttl_s=60)
    assert [await store.get(f"p:{n}") is not None for n in "abcd"] == [True, False, True, True]
    big = MemoryStore(max_entries=100, max_bytes=3000, max_entry_bytes=2500)
    await big.put("p:1", entry(size=1000), ttl_s=60)
    await big.put("p:2", entry(size=1000), ttl_s=60)
    await big.put("p:3", entry(size=1000), ttl_s=60)  # over 3000 bytes: the oldest goes
    assert await big.get("p:1") is None and await big.get("p:3") is not None
    assert not await big.put("p:huge", entry(size=2600), ttl_s=60)
    assert (await big.stats()).memory_bytes <= 3000


async def test_clear_by_project_is_exact() -> None:
    store = MemoryStore()
    for project in ("a", "a:b", "b"):
        await store.put(exact_key(project, "m", CHAT, body()), entry(project), ttl_s=60)
    assert await store.clear("a") == 1
    assert await store.get(exact_key("a:b", "m", CHAT, body())) is not None
    assert await store.clear() == 2
    assert (await store.stats()).items == 0
