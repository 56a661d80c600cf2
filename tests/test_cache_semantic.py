"""The semantic cache with the real local model: hits, near misses, negation, scoping, eviction.

Needs the ``semantic`` extra and the model weights (``scripts/install --dev`` installs both).
Without them the tests skip on a developer machine and fail in CI, which must run them.
"""

from __future__ import annotations

import os
from typing import Any

import orjson
import pytest

from tollhouse.cache import CachedEntry
from tollhouse.pricing.usage import Usage


def _require_semantic() -> Any:
    try:
        from tollhouse.cache.semantic.embedder import MiniLMEmbedder

        return MiniLMEmbedder()
    except ImportError as exc:
        if os.environ.get("CI") == "true":
            pytest.fail(f"CI must install the semantic extra and model (scripts/install --dev): {exc}")
        pytest.skip(f"semantic extra not installed: {exc}")


@pytest.fixture(scope="module")
def embedder() -> Any:
    return _require_semantic()


@pytest.fixture
def cache(embedder: Any) -> Any:
    from tollhouse.cache.semantic.store import SemanticCache

    return SemanticCache(embedder)


CHAT = "/v1/chat/completions"


def ask(question: str, *, history: list[dict[str, Any]] | None = None, **params: Any) -> dict[str, Any]:
    messages = [{"role": "system", "content": "You are terse."}, *(history or [])]
    messages.append({"role": "user", "content": question})
    return {"model": "gpt-4o", "messages": messages, "temperature": 0, **params}


def answer(text: str, project: str = "default", *, tool_call: bool = False) -> CachedEntry:
    message: dict[str, Any] = {"role": "assistant", "content": text}
    if tool_call:
        message["tool_calls"] = [
            {"id": "c", "type": "function", "function": {"name": "f", "arguments": "{}"}}
        ]
    body = {"id": "x", "object": "chat.completion", "choices": [{"index": 0, "message": message}]}
    return CachedEntry(
        orjson.dumps(body), CHAT, project, "gpt-4o", Usage(input_tokens=30, output_tokens=20), 900
    )


async def remember(cache: Any, question: str, text: str, project: str = "default", **kw: Any) -> None:
    query = cache.prepare(project, "gpt-4o", CHAT, ask(question, **kw))
    assert query is not None
    assert await cache.lookup(query) is None
    assert await cache.store(query, answer(text, project))


async def lookup(
    cache: Any, question: str, project: str = "default", model: str = "gpt-4o", **kw: Any
) -> Any:
    query = cache.prepare(project, model, CHAT, ask(question, **kw))
    return await cache.lookup(query) if query is not None else None


def test_the_embedding_is_all_minilm(embedder: Any) -> None:
    a = embedder.embed("How do I reverse a list in Python?")
    b = embedder.embed("What is the way to reverse a Python list?")
    c = embedder.embed("What is the capital of France?")
    assert a.shape == (384,) and abs(float(a @ a) - 1) < 1e-5
    assert float(a @ b) > 0.9  # paraphrase
    assert float(a @ c) < 0.2  # unrelated
    assert embedder.embed("word " * 300) is None  # past the 256-token window: refused, not truncated


async def test_a_paraphrase_hits(cache: Any) -> None:
    await remember(cache, "How do I reverse a list in Python?", "Use reversed() or list.reverse().")
    hit = await lookup(cache, "How can I reverse a list in Python?")
    assert hit is not None and hit.similarity >= 0.95
    assert (
        orjson.loads(hit.entry.body)["choices"][0]["message"]["content"]
        == "Use reversed() or list.reverse()."
    )
    assert (
        cache.counters.hits == 1
        and cache.counters.tokens_saved == 50
        and cache.counters.cost_saved_nanos == 900
    )


async def test_a_near_miss_stays_a_miss_at_the_default_threshold(embedder: Any) -> None:
    from tollhouse.cache.semantic.store import SemanticCache

    strict, loose = SemanticCache(embedder), SemanticCache(embedder, threshold=0.94)
    for cache in (strict, loose):
        await remember(cache, "What is the capital of France?", "Paris.")
    # Cosine 0.949: close, but below 0.95.
    assert await lookup(strict, "Tell me the capital of France.") is None
    assert await lookup(loose, "Tell me the capital of France.") is not None
    assert await lookup(strict, "What is the capital of Germany?") is None


async def test_a_question_and_its_negation_never_share_an_answer(cache: Any, embedder: Any) -> None:
    plain, negated = "Is Python a compiled language?", "Is Python not a compiled language?"
    raw = float(embedder.embed(f"user: {plain}") @ embedder.embed(f"user: {negated}"))
    assert raw > 0.95  # the model alone would serve the wrong answer: this is why the guard exists
    await remember(cache, plain, "No, it is interpreted (compiled to bytecode).")
    assert await lookup(cache, negated) is None
    assert cache.counters.vetoed == 1


async def test_the_guard_also_catches_antonyms_and_numbers(cache: Any) -> None:
    await remember(cache, "Sort the array in ascending order", "arr.sort()")
    assert await lookup(cache, "Sort the array in descending order") is None  # cosine 0.96
    await remember(cache, "What is 12 times 12?", "144")
    assert await lookup(cache, "What is 12 times 13?") is None


async def test_scope_project_model_params_and_system_prompt(cache: Any) -> None:
    question = "How do I reverse a list in Python?"
    await remember(cache, question, "alpha's answer", project="alpha")
    assert await lookup(cache, question, project="alpha") is not None
    assert await lookup(cache, question, project="beta") is None  # never another project's answer
    assert await lookup(cache, question, project="alpha", model="gpt-4o-mini") is None
    assert await lookup(cache, question, project="alpha", temperature=0.9) is None
    query = cache.prepare(
        "alpha", "gpt-4o", CHAT, {**ask(question), "messages": [{"role": "user", "content": question}]}
    )
    assert await cache.lookup(query) is None  # different (no) system prompt


async def test_the_whole_conversation_is_compared(cache: Any) -> None:
    python = [
        {"role": "user", "content": "How do I read a file in Python?"},
        {"role": "assistant", "content": "open()"},
    ]
    rust = [
        {"role": "user", "content": "How do I read a file in Rust?"},
        {"role": "assistant", "content": "fs::read"},
    ]
    await remember(cache, "And how do I write one?", "python answer", history=python)
    assert await lookup(cache, "And how do I write one?", history=python) is not None
    assert await lookup(cache, "And how do I write one?", history=rust) is None


async def test_tool_call_answers_are_never_stored(cache: Any) -> None:
    query = cache.prepare("default", "gpt-4o", CHAT, ask("What's the weather in Paris?"))
    assert not await cache.store(query, answer("", tool_call=True))
    assert len(cache) == 0


def test_ineligible_requests(cache: Any) -> None:
    image = {
        "role": "user",
        "content": [
            {"type": "text", "text": "What is this?"},
            {"type": "image_url", "image_url": {"url": "data:"}},
        ],
    }
    assert cache.prepare("default", "gpt-4o", CHAT, {"messages": [image]}) is None
    assert cache.prepare("default", "text-embedding-3-small", "/v1/embeddings", {"input": "x"}) is None
    assert (
        cache.prepare("default", "gpt-4o", CHAT, {"messages": [{"role": "system", "content": "x"}]}) is None
    )


async def test_opt_in_per_project(embedder: Any) -> None:
    from tollhouse.cache.semantic.store import SemanticCache

    cache = SemanticCache(embedder, projects=("team-*",))
    assert cache.prepare("default", "gpt-4o", CHAT, ask("hi")) is None
    assert cache.prepare("team-a", "gpt-4o", CHAT, ask("hi")) is not None


async def test_too_long_to_embed_is_not_stored(cache: Any) -> None:
    query = cache.prepare("default", "gpt-4o", CHAT, ask("explain " * 400))
    assert await cache.lookup(query) is None
    assert not await cache.store(query, answer("long"))


async def test_ttl_eviction_and_clear(embedder: Any) -> None:
    from tollhouse.cache.semantic.store import SemanticCache

    now = [0.0]
    cache = SemanticCache(embedder, ttl_s=10, max_entries=2, clock=lambda: now[0])
    await remember(cache, "What is the capital of France?", "Paris.", project="a")
    now[0] = 11
    assert await lookup(cache, "What is the capital of France?", project="a") is None  # expired
    await remember(cache, "What is the capital of France?", "Paris.", project="a")
    await remember(cache, "What is the capital of Spain?", "Madrid.", project="b")
    await remember(cache, "What is the capital of Italy?", "Rome.", project="b")  # evicts the oldest (a)
    assert len(cache) == 2
    assert await lookup(cache, "What is the capital of France?", project="a") is None
    assert cache.clear("b") == 2 and len(cache) == 0
