"""The tenancy service: built once in the app's lifespan (and by the CLI), closed with it.

It owns the gate (the hot path) and every change to projects, keys, provider keys and budgets,
so each change also evicts the caches it affects, here and, through Redis, in other processes.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import redis.asyncio as aioredis
from sqlalchemy.ext.asyncio import AsyncEngine

from tollhouse.errors import Forbidden, InvalidParameter, NotFound
from tollhouse.gateway.providers import ProviderRegistry
from tollhouse.pricing.table import PriceTable
from tollhouse.settings import Settings
from tollhouse.tenancy.counters import BudgetLine, MemoryCounters
from tollhouse.tenancy.crypto import SecretBox
from tollhouse.tenancy.gate import Counters, Gate
from tollhouse.tenancy.invalidation import Invalidator
from tollhouse.tenancy.keyring import KeyRing
from tollhouse.tenancy.keys import KeyKind, NewKey
from tollhouse.tenancy.plans import PeriodClock, PlanBook, WindowClock
from tollhouse.tenancy.projects import ProjectDirectory
from tollhouse.tenancy.redis_counters import RedisCounters
from tollhouse.tenancy.store import PROJECT_BUDGET, Budget, KeyRow, ProjectRow, TenancyStore
from tollhouse.timeutil import Period

_BUDGET_PERIODS = tuple(Period)


@dataclass(frozen=True, slots=True)
class BudgetStatus:
    budget: Budget
    spent_nanos: int
    spent_tokens: int
    line: BudgetLine

    @property
    def remaining_nanos(self) -> int | None:
        limit = self.budget.limit_nanos
        return None if limit is None else max(0, limit - self.spent_nanos)

    @property
    def remaining_tokens(self) -> int | None:
        limit = self.budget.limit_tokens
        return None if limit is None else max(0, limit - self.spent_tokens)

    def as_json(self) -> dict[str, Any]:
        b = self.budget
        remaining_n = self.remaining_nanos
        return {
            "period": b.period.value,
            "limit_usd": b.limit_nanos / 1e9 if b.limit_nanos is not None else None,
            "limit_tokens": b.limit_tokens,
            "spent_usd": self.spent_nanos / 1e9,
            "spent_tokens": self.spent_tokens,
            "remaining_usd": remaining_n / 1e9 if remaining_n is not None else None,
            "remaining_tokens": self.remaining_tokens,
            "period_start": datetime.fromtimestamp(self.line.start, UTC).isoformat().replace("+00:00", "Z"),
            "period_end": datetime.fromtimestamp(self.line.end, UTC).isoformat().replace("+00:00", "Z"),
        }


class Tenancy:
    def __init__(
        self, settings: Settings, engine: AsyncEngine, prices: PriceTable, registry: ProviderRegistry
    ) -> None:
        conf = settings.tenancy
        self.settings = settings
        self.store = TenancyStore(engine)
        self.box = SecretBox.from_settings(conf.encryption_keys, settings.data_dir)
        self.plans = PlanBook(conf)
        self.redis: aioredis.Redis | None = None
        if settings.redis_url:
            # A blocking pool: a burst waits for a free connection instead of failing.
            pool = aioredis.BlockingConnectionPool.from_url(
                settings.redis_url, max_connections=128, timeout=10
            )
            self.redis = aioredis.Redis.from_pool(pool)
        open_possible = settings.is_loopback and not settings.admin_key
        self.keys = KeyRing(
            self.store, ttl_s=conf.cache_ttl_s, flush_s=conf.last_used_flush_s, open_possible=open_possible
        )
        self.projects = ProjectDirectory(self.store, self.box, conf.cache_ttl_s)
        counters: Counters
        if self.redis is not None:
            counters = RedisCounters(self.redis, conf.redis_prefix, self._seed)
        else:
            counters = MemoryCounters(self._seed)
        self.counters = counters
        self.gate = Gate(
            keys=self.keys,
            projects=self.projects,
            counters=counters,
            plans=self.plans,
            windows=WindowClock(settings.zone),
            periods=PeriodClock(settings.zone),
            prices=prices,
            registry=registry,
            default_max_tokens=conf.default_max_tokens,
        )
        self.invalidator = Invalidator(self.redis, conf.redis_prefix, self._forget)

    async def start(self, *, background: bool = True) -> None:
        if background:
            self.keys.start()
            await self.invalidator.start()

    async def close(self) -> None:
        await self.invalidator.close()
        await self.keys.close()
        await self.counters.close()
        if self.redis is not None:
            await self.redis.aclose()

    async def _seed(self, line: BudgetLine) -> tuple[int, int]:
        start = datetime.fromtimestamp(line.start, UTC)
        end = datetime.fromtimestamp(line.end, UTC)
        return await self.store.spent(line.project_id, line.key_id or None, start, end)

    def _forget(self, kind: str, value: str) -> None:
        if kind == "key":
            self.keys.forget(value or None)
        elif kind == "project":
            self.projects.forget(value or None)

    # -- projects ------------------------------------------------------------------------------

    def check_plan(self, plan: str | None) -> None:
        if plan is not None and plan not in self.plans:
            raise InvalidParameter(
                f"unknown plan {plan!r}; known: {', '.join(self.plans.names)}", param="plan"
            )

    async def create_project(
        self, name: str, *, org_id: str | None, plan: str | None, provider: str | None, key_name: str
    ) -> tuple[ProjectRow, KeyRow, NewKey]:
        self.check_plan(plan)
        project = await self.store.create_project(name, org_id=org_id, plan=plan, provider=provider)
        key, made = await self.store.create_key(project.id, key_name, KeyKind.PROJECT)
        await self.invalidator.publish("key", "")
        return project, key, made

    async def project(self, project_id: str, org_id: str | None = None) -> ProjectRow:
        row = await self.store.get_project(project_id)
        if row is None or (org_id is not None and row.org_id != org_id):
            raise NotFound(f"no project {project_id!r}", details={"project_id": project_id})
        return row

    async def update_project(self, project_id: str, values: dict[str, Any]) -> None:
        if "plan" in values:
            self.check_plan(values["plan"])
        await self.store.update_project(project_id, values)
        await self.invalidator.publish("project", project_id)

    async def delete_project(self, project_id: str) -> None:
        for key_hash in await self.store.delete_project(project_id):
            await self.invalidator.publish("key", key_hash)
        await self.invalidator.publish("project", project_id)

    # -- keys ----------------------------------------------------------------------------------

    async def create_key(self, project_id: str, name: str, kind: KeyKind) -> tuple[KeyRow, NewKey]:
        key, made = await self.store.create_key(project_id, name, kind)
        await self.invalidator.publish("key", "")  # refreshes the "any keys yet?" count
        return key, made

    async def revoke_key(self, project_id: str, key_id: str) -> None:
        key_hash = await self.store.revoke_key(project_id, key_id)
        if key_hash is None:
            raise NotFound(f"no active key {key_id!r} in project {project_id!r}", details={"key_id": key_id})
        await self.invalidator.publish("key", key_hash)
        await self.invalidator.publish("project", project_id)

    # -- provider keys -------------------------------------------------------------------------

    async def set_provider_key(self, project_id: str, provider: str, api_key: str) -> None:
        await self.store.set_provider_key(project_id, provider, self.box.encrypt(api_key))
        await self.invalidator.publish("project", project_id)

    async def delete_provider_key(self, project_id: str, provider: str) -> None:
        if not await self.store.delete_provider_key(project_id, provider):
            raise NotFound(f"no {provider!r} key for project {project_id!r}", details={"provider": provider})
        await self.invalidator.publish("project", project_id)

    async def rotate_provider_keys(self) -> int:
        """Re-encrypt every provider key under the newest encryption key."""
        rows = await self.store.provider_ciphertexts()
        for project_id, provider, ciphertext in rows:
            await self.store.set_provider_key(project_id, provider, self.box.rotate(ciphertext))
        return len(rows)

    # -- budgets -------------------------------------------------------------------------------

    async def set_budget(self, project_id: str, budget: Budget) -> BudgetStatus:
        await self.store.set_budget(project_id, budget)
        await self._reset_counters(project_id, budget.key_id)
        await self.invalidator.publish("project", project_id)
        status = await self.budget_status(project_id, budget.key_id)
        assert status is not None
        return status

    async def delete_budget(self, project_id: str, key_id: str = PROJECT_BUDGET) -> None:
        if not await self.store.delete_budget(project_id, key_id):
            raise NotFound("no budget is set", details={"project_id": project_id})
        await self._reset_counters(project_id, key_id)
        await self.invalidator.publish("project", project_id)

    async def _reset_counters(self, project_id: str, key_id: str) -> None:
        now = time.time()
        lines = [
            self.gate.line(project_id, Budget(key_id, period, None, None), now) for period in _BUDGET_PERIODS
        ]
        await self.counters.forget(lines)

    async def budget_status(self, project_id: str, key_id: str = PROJECT_BUDGET) -> BudgetStatus | None:
        budget = (await self.store.budgets_of(project_id)).get(key_id)
        if budget is None:
            return None
        line = self.gate.line(project_id, budget)
        nanos, tokens = await self.counters.current(line)
        return BudgetStatus(budget, nanos, tokens, line)

    async def usage_scope(self, headers: dict[str, str], project_id: str) -> tuple[str, dict[str, Any]]:
        """For ``GET /v1/usage``: the project the caller may read, and its budget's limit and remaining.

        Seed 001 reports ``limit``/``remaining`` in tokens; with a USD-only budget they are in USD
        (``limit_unit`` says which). The budget's own period applies, whatever ``period`` asks.
        """
        record = await self.gate.authenticate(headers)
        if record is not None:
            if project_id not in ("default", record.project_id):
                raise Forbidden("this API key belongs to another project", details={"project_id": project_id})
            project_id = record.project_id
        status = await self.budget_status(project_id)
        if status is None:
            return project_id, {"limit": None, "remaining": None, "budget": None}
        b = status.budget
        if b.limit_tokens is not None:
            limit: float | int | None = b.limit_tokens
            remaining: float | int | None = status.remaining_tokens
            unit = "tokens"
        else:
            limit = (b.limit_nanos or 0) / 1e9
            remaining = (status.remaining_nanos or 0) / 1e9
            unit = "usd"
        return project_id, {
            "limit": limit,
            "remaining": remaining,
            "limit_unit": unit,
            "budget": status.as_json(),
        }
