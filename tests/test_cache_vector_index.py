"""The exact vector index: same answers as brute force, scopes kept apart, O(1) removal."""

from __future__ import annotations

import os
from typing import Any

import pytest

try:
    import numpy as np
except ImportError:  # pragma: no cover - the semantic extra is missing
    if os.environ.get("CI") == "true":
        raise
    pytest.skip("numpy (the semantic extra) is not installed", allow_module_level=True)

from tollhouse.cache.semantic.index import VectorIndex

DIM = 384


def unit(rng: Any, n: int) -> Any:
    x = rng.standard_normal((n, DIM), dtype=np.float32)
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def brute(matrix: Any, ids: Any, q: Any, threshold: float) -> list[int]:
    scores = matrix @ q
    order = np.argsort(-scores)
    return [int(ids[i]) for i in order if scores[i] >= threshold][:3]


def test_matches_brute_force_including_clustered_data() -> None:
    rng = np.random.default_rng(7)
    centre = unit(rng, 1)[0]
    clustered = centre + 0.15 * unit(rng, 2000)  # many vectors near each other: the bound must stay exact
    clustered /= np.linalg.norm(clustered, axis=1, keepdims=True)
    data = np.vstack([unit(rng, 3000), clustered]).astype(np.float32)
    ids = np.arange(100, 100 + len(data), dtype=np.int64)
    index = VectorIndex(DIM, initial_capacity=16)
    index.add_many("s", ids[:2500], data[:2500])
    for i in range(2500, len(data)):
        index.add("s", int(ids[i]), data[i])  # grows past its capacity several times
    for threshold in (0.95, 0.9, 0.5):
        for row in (0, 2999, 3000, 4999):
            q = data[row] + 0.02 * unit(rng, 1)[0]
            q /= np.linalg.norm(q)
            got = [i for i, _ in index.search("s", q, threshold)]
            assert got == brute(data, ids, q, threshold)


def test_scopes_never_see_each_other() -> None:
    rng = np.random.default_rng(1)
    v = unit(rng, 1)[0]
    index = VectorIndex(DIM)
    index.add("alpha:1", 1, v)
    assert index.search("alpha:1", v, 0.95)[0][0] == 1
    assert index.search("beta:1", v, 0.95) == []
    assert sorted(index.scopes()) == ["alpha:1"]


def test_remove_moves_the_last_row() -> None:
    rng = np.random.default_rng(2)
    data = unit(rng, 5)
    index = VectorIndex(DIM)
    for i, v in enumerate(data):
        index.add("s", i, v)
    assert index.remove("s", 1)
    assert not index.remove("s", 1)
    assert index.search("s", data[1], 0.99) == []
    for i in (0, 2, 3, 4):
        assert index.search("s", data[i], 0.99)[0][0] == i
    assert index.scope_size("s") == 4 and len(index) == 4
    for i in (0, 2, 3, 4):
        index.remove("s", i)
    assert index.scopes() == []


def test_re_adding_an_id_replaces_its_vector() -> None:
    rng = np.random.default_rng(3)
    a, b = unit(rng, 2)
    index = VectorIndex(DIM)
    index.add("s", 9, a)
    index.add("s", 9, b)
    assert index.scope_size("s") == 1
    assert index.search("s", a, 0.95) == [] and index.search("s", b, 0.95)[0][0] == 9
    assert index.drop_scope("s") == 1
