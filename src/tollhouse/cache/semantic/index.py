"""Exact nearest-neighbour search over unit vectors, partitioned by cache scope.

Each scope (project + model + parameters) has its own preallocated, growing float32 matrix,
so a lookup scans only its scope and one project can never match another's entries.

The scan is exact but reads half the memory of a plain ``X @ q``. Each vector is stored as a
head (first half) and a tail with its norm precomputed; by Cauchy-Schwarz
``q·x <= q_h·x_h + |q_t||x_t|``, so after the head product only rows whose bound reaches the
threshold need their tail read. No row that could score above the threshold is ever skipped,
unlike approximate indexes (HNSW), whose missed neighbours a cache cannot afford.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

_SLACK = np.float32(1e-5)  # float32 rounding in the bound; never lets a real match be filtered out


@dataclass(slots=True)
class _Partition:
    head: NDArray[np.float32]
    tail: NDArray[np.float32]
    tail_norms: NDArray[np.float32]
    ids: NDArray[np.int64]
    rows: dict[int, int]
    count: int = 0


class VectorIndex:
    """Thread-safe: searches run in a worker thread while the event loop adds and removes."""

    def __init__(self, dim: int, *, initial_capacity: int = 256) -> None:
        self.dim = dim
        self._split = dim // 2
        self._initial = max(1, initial_capacity)
        self._parts: dict[str, _Partition] = {}
        self._lock = threading.Lock()

    def __len__(self) -> int:
        with self._lock:
            return sum(p.count for p in self._parts.values())

    def scope_size(self, scope: str) -> int:
        with self._lock:
            part = self._parts.get(scope)
            return part.count if part else 0

    def scopes(self) -> list[str]:
        with self._lock:
            return list(self._parts)

    def add(self, scope: str, item_id: int, vector: NDArray[np.float32]) -> None:
        vec = np.asarray(vector, dtype=np.float32)
        with self._lock:
            part = self._parts.get(scope)
            if part is None:
                part = self._parts[scope] = self._new_partition(self._initial)
            if item_id in part.rows:
                row = part.rows[item_id]
            else:
                if part.count == len(part.ids):
                    self._grow(part)
                row = part.count
                part.count += 1
                part.rows[item_id] = row
                part.ids[row] = item_id
            part.head[row] = vec[: self._split]
            part.tail[row] = vec[self._split :]
            part.tail_norms[row] = np.linalg.norm(vec[self._split :])

    def add_many(self, scope: str, item_ids: NDArray[np.int64], vectors: NDArray[np.float32]) -> None:
        """Bulk load (start-up, benchmarks): one copy instead of one per vector."""
        with self._lock:
            part = self._parts.get(scope)
            if part is None:
                part = self._parts[scope] = self._new_partition(max(self._initial, len(item_ids)))
            while part.count + len(item_ids) > len(part.ids):
                self._grow(part)
            start, end = part.count, part.count + len(item_ids)
            part.head[start:end] = vectors[:, : self._split]
            part.tail[start:end] = vectors[:, self._split :]
            part.tail_norms[start:end] = np.linalg.norm(vectors[:, self._split :], axis=1)
            part.ids[start:end] = item_ids
            for offset, item_id in enumerate(item_ids.tolist()):
                part.rows[int(item_id)] = start + offset
            part.count = end

    def remove(self, scope: str, item_id: int) -> bool:
        """O(1): the last row moves into the freed one."""
        with self._lock:
            part = self._parts.get(scope)
            if part is None or item_id not in part.rows:
                return False
            row = part.rows.pop(item_id)
            last = part.count - 1
            if row != last:
                part.head[row] = part.head[last]
                part.tail[row] = part.tail[last]
                part.tail_norms[row] = part.tail_norms[last]
                moved = int(part.ids[last])
                part.ids[row] = moved
                part.rows[moved] = row
            part.count = last
            if part.count == 0:
                del self._parts[scope]
            return True

    def drop_scope(self, scope: str) -> int:
        with self._lock:
            part = self._parts.pop(scope, None)
            return part.count if part else 0

    def search(
        self, scope: str, query: NDArray[np.float32], threshold: float, limit: int = 3
    ) -> list[tuple[int, float]]:
        """Up to ``limit`` (id, cosine) pairs at or above ``threshold``, best first."""
        q = np.asarray(query, dtype=np.float32)
        q_head, q_tail = q[: self._split], q[self._split :]
        q_tail_norm = np.float32(np.linalg.norm(q_tail))
        with self._lock:
            part = self._parts.get(scope)
            if part is None or part.count == 0:
                return []
            n = part.count
            partial = part.head[:n] @ q_head
            bound = partial + q_tail_norm * part.tail_norms[:n]
            candidates = np.flatnonzero(bound >= np.float32(threshold) - _SLACK)
            if candidates.size == 0:
                return []
            scores = partial[candidates] + part.tail[candidates] @ q_tail
            ids = part.ids[candidates]
        keep = scores >= threshold
        scores, ids = scores[keep], ids[keep]
        order = np.argsort(-scores)[:limit]
        return [(int(ids[i]), float(scores[i])) for i in order]

    def _new_partition(self, capacity: int) -> _Partition:
        return _Partition(
            head=np.zeros((capacity, self._split), dtype=np.float32),
            tail=np.zeros((capacity, self.dim - self._split), dtype=np.float32),
            tail_norms=np.zeros(capacity, dtype=np.float32),
            ids=np.zeros(capacity, dtype=np.int64),
            rows={},
        )

    def _grow(self, part: _Partition) -> None:
        capacity = len(part.ids) * 2
        for name in ("head", "tail", "tail_norms", "ids"):
            old = getattr(part, name)
            new = np.zeros((capacity, *old.shape[1:]), dtype=old.dtype)
            new[: part.count] = old[: part.count]
            setattr(part, name, new)
