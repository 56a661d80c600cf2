"""Projects as the hot path sees them: plan, budgets and decrypted provider keys, from memory.

Loaded once per ``cache_ttl_s`` per project (three indexed queries), evicted at once when the
project changes here and through Redis pub/sub elsewhere. In the local keyless mode a project
named by a call is created on first use.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from tollhouse.tenancy.cache import TTLCache
from tollhouse.tenancy.crypto import SecretBox
from tollhouse.tenancy.store import Budget, TenancyStore

DEFAULT_PROJECT = "default"


@dataclass(frozen=True, slots=True)
class ProjectView:
    id: str
    plan: str | None
    budgets: Mapping[str, Budget]  # "" → the project's own; key id → that key's
    provider_keys: Mapping[str, str]  # provider name or protocol → decrypted key


class ProjectDirectory:
    def __init__(self, store: TenancyStore, box: SecretBox, ttl_s: float) -> None:
        self._store = store
        self._box = box
        self._cache: TTLCache[ProjectView | None] = TTLCache(ttl_s)

    async def get(self, project_id: str, *, create: bool = False) -> ProjectView | None:
        view = await self._cache.get(project_id, lambda: self._load(project_id))
        if view is None and create:
            await self._store.ensure_project(project_id)
            self._cache.forget(project_id)
            view = await self._cache.get(project_id, lambda: self._load(project_id))
        return view

    async def _load(self, project_id: str) -> ProjectView | None:
        row = await self._store.get_project(project_id)
        if row is None:
            return None
        keys: dict[str, str] = {}
        for _, provider, ciphertext in await self._store.provider_ciphertexts(project_id):
            plaintext = self._box.decrypt(ciphertext)
            if plaintext is not None:
                keys[provider] = plaintext
        return ProjectView(row.id, row.plan, await self._store.budgets_of(project_id), keys)

    def forget(self, project_id: str | None = None) -> None:
        self._cache.forget(project_id)
