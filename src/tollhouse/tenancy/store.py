"""Tenancy rows in the database: projects, keys, provider keys, budgets. No caching here
(``directory.py`` caches for the hot path); every method is one short transaction."""

from __future__ import annotations

import contextlib
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import bindparam, func, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncEngine

from tollhouse.db.tables import api_keys, budgets, ledger, organizations, projects, provider_keys
from tollhouse.ids import new_id
from tollhouse.ledger.queries import TOKENS
from tollhouse.tenancy.keys import KeyKind, KeyRecord, NewKey, make_key
from tollhouse.timeutil import Period, as_utc

PROJECT_BUDGET = ""  # budgets.key_id of a project-wide budget
SANDBOX = "sandbox"  # ledger outcome of a th_test_ call: never spend


@dataclass(frozen=True, slots=True)
class Budget:
    key_id: str  # PROJECT_BUDGET for the project's own
    period: Period
    limit_nanos: int | None
    limit_tokens: int | None


@dataclass(frozen=True, slots=True)
class ProjectRow:
    id: str
    name: str
    org_id: str | None
    plan: str | None
    provider: str | None
    created_at: datetime


@dataclass(frozen=True, slots=True)
class KeyRow:
    id: str
    project_id: str
    name: str
    kind: KeyKind
    hint: str
    created_at: datetime
    last_used_at: datetime | None
    revoked_at: datetime | None


def _project(row: Any) -> ProjectRow:
    return ProjectRow(row.id, row.name, row.org_id, row.plan, row.provider, as_utc(row.created_at))


def _key(row: Any) -> KeyRow:
    return KeyRow(
        row.id,
        row.project_id,
        row.name,
        KeyKind(row.kind),
        row.hint,
        as_utc(row.created_at),
        as_utc(row.last_used_at) if row.last_used_at else None,
        as_utc(row.revoked_at) if row.revoked_at else None,
    )


class TenancyStore:
    def __init__(self, engine: AsyncEngine) -> None:
        self.engine = engine

    # -- projects ------------------------------------------------------------------------------

    async def create_project(
        self,
        name: str,
        *,
        project_id: str | None = None,
        org_id: str | None = None,
        plan: str | None = None,
        provider: str | None = None,
    ) -> ProjectRow:
        now = datetime.now(UTC)
        pid = project_id or new_id("proj")
        async with self.engine.begin() as conn:
            if org_id is not None:
                found = await conn.scalar(select(organizations.c.id).where(organizations.c.id == org_id))
                if found is None:
                    await conn.execute(organizations.insert().values(id=org_id, name=org_id, created_at=now))
            await conn.execute(
                projects.insert().values(
                    id=pid, name=name, org_id=org_id, plan=plan, provider=provider, created_at=now
                )
            )
        return ProjectRow(pid, name, org_id, plan, provider, now)

    async def ensure_project(self, project_id: str) -> None:
        """The local, keyless mode: a project named by a call exists from its first call."""
        if await self.get_project(project_id) is not None:
            return
        with contextlib.suppress(IntegrityError):  # another request or process created it first
            await self.create_project(project_id, project_id=project_id)

    async def get_project(self, project_id: str) -> ProjectRow | None:
        async with self.engine.connect() as conn:
            row = (await conn.execute(select(projects).where(projects.c.id == project_id))).first()
        return _project(row) if row is not None else None

    async def list_projects(self, org_id: str | None) -> list[ProjectRow]:
        query = select(projects).order_by(projects.c.created_at, projects.c.id)
        if org_id is not None:
            query = query.where(projects.c.org_id == org_id)
        async with self.engine.connect() as conn:
            return [_project(r) for r in await conn.execute(query)]

    async def update_project(self, project_id: str, values: Mapping[str, Any]) -> None:
        async with self.engine.begin() as conn:
            await conn.execute(update(projects).where(projects.c.id == project_id).values(**values))

    async def delete_project(self, project_id: str) -> list[str]:
        """Delete the project, its keys, provider keys and budgets; its ledger rows stay (they are
        history). Returns the deleted keys' hashes, so caches can forget them."""
        async with self.engine.begin() as conn:
            hashes = list(
                await conn.scalars(select(api_keys.c.key_hash).where(api_keys.c.project_id == project_id))
            )
            for table in (api_keys, provider_keys, budgets):
                await conn.execute(table.delete().where(table.c.project_id == project_id))
            await conn.execute(projects.delete().where(projects.c.id == project_id))
        return hashes

    # -- API keys ------------------------------------------------------------------------------

    async def create_key(self, project_id: str, name: str, kind: KeyKind) -> tuple[KeyRow, NewKey]:
        made = make_key(kind)
        row = KeyRow(new_id("key"), project_id, name, kind, made.hint, datetime.now(UTC), None, None)
        async with self.engine.begin() as conn:
            await conn.execute(
                api_keys.insert().values(
                    id=row.id,
                    project_id=project_id,
                    name=name,
                    kind=kind.value,
                    key_hash=made.key_hash,
                    hint=made.hint,
                    created_at=row.created_at,
                )
            )
        return row, made

    async def list_keys(self, project_id: str) -> list[KeyRow]:
        query = (
            select(api_keys)
            .where(api_keys.c.project_id == project_id, api_keys.c.revoked_at.is_(None))
            .order_by(api_keys.c.created_at, api_keys.c.id)
        )
        async with self.engine.connect() as conn:
            return [_key(r) for r in await conn.execute(query)]

    async def get_key(self, project_id: str, key_id: str) -> KeyRow | None:
        query = select(api_keys).where(
            api_keys.c.id == key_id, api_keys.c.project_id == project_id, api_keys.c.revoked_at.is_(None)
        )
        async with self.engine.connect() as conn:
            row = (await conn.execute(query)).first()
        return _key(row) if row is not None else None

    async def revoke_key(self, project_id: str, key_id: str) -> str | None:
        """Revoke; the key's hash (to evict it from caches), or None when there was no such key."""
        async with self.engine.begin() as conn:
            key_hash = await conn.scalar(
                select(api_keys.c.key_hash).where(
                    api_keys.c.id == key_id,
                    api_keys.c.project_id == project_id,
                    api_keys.c.revoked_at.is_(None),
                )
            )
            if key_hash is None:
                return None
            await conn.execute(
                update(api_keys).where(api_keys.c.id == key_id).values(revoked_at=datetime.now(UTC))
            )
            await conn.execute(
                budgets.delete().where(budgets.c.project_id == project_id, budgets.c.key_id == key_id)
            )
        return str(key_hash)

    async def find_key(self, key_hash: str) -> KeyRecord | None:
        query = select(api_keys.c.id, api_keys.c.project_id, api_keys.c.kind).where(
            api_keys.c.key_hash == key_hash, api_keys.c.revoked_at.is_(None)
        )
        async with self.engine.connect() as conn:
            row = (await conn.execute(query)).first()
        return KeyRecord(row.id, row.project_id, KeyKind(row.kind)) if row is not None else None

    async def count_active_keys(self) -> int:
        query = select(func.count()).select_from(api_keys).where(api_keys.c.revoked_at.is_(None))
        async with self.engine.connect() as conn:
            return int(await conn.scalar(query) or 0)

    async def touch_keys(self, used: Mapping[str, datetime]) -> None:
        """Batched ``last_used_at`` (one statement for many keys, every few seconds)."""
        if not used:
            return
        statement = (
            update(api_keys)
            .where(api_keys.c.id == bindparam("key_id"))
            .values(last_used_at=bindparam("used"))
        )
        async with self.engine.begin() as conn:
            await conn.execute(statement, [{"key_id": k, "used": t} for k, t in used.items()])

    # -- provider keys -------------------------------------------------------------------------

    async def set_provider_key(self, project_id: str, provider: str, ciphertext: str) -> None:
        now = datetime.now(UTC)
        async with self.engine.begin() as conn:
            await conn.execute(
                provider_keys.delete().where(
                    provider_keys.c.project_id == project_id, provider_keys.c.provider == provider
                )
            )
            await conn.execute(
                provider_keys.insert().values(
                    project_id=project_id, provider=provider, ciphertext=ciphertext, updated_at=now
                )
            )

    async def delete_provider_key(self, project_id: str, provider: str) -> bool:
        async with self.engine.begin() as conn:
            result = await conn.execute(
                provider_keys.delete().where(
                    provider_keys.c.project_id == project_id, provider_keys.c.provider == provider
                )
            )
        return bool(result.rowcount)

    async def provider_ciphertexts(self, project_id: str | None = None) -> list[tuple[str, str, str]]:
        """(project_id, provider, ciphertext) rows, for one project or all (key rotation)."""
        query = select(provider_keys.c.project_id, provider_keys.c.provider, provider_keys.c.ciphertext)
        if project_id is not None:
            query = query.where(provider_keys.c.project_id == project_id)
        async with self.engine.connect() as conn:
            return [(r.project_id, r.provider, r.ciphertext) for r in await conn.execute(query)]

    # -- budgets -------------------------------------------------------------------------------

    async def set_budget(self, project_id: str, budget: Budget) -> None:
        async with self.engine.begin() as conn:
            await conn.execute(
                budgets.delete().where(budgets.c.project_id == project_id, budgets.c.key_id == budget.key_id)
            )
            await conn.execute(
                budgets.insert().values(
                    project_id=project_id,
                    key_id=budget.key_id,
                    period=budget.period.value,
                    limit_nanos=budget.limit_nanos,
                    limit_tokens=budget.limit_tokens,
                    updated_at=datetime.now(UTC),
                )
            )

    async def delete_budget(self, project_id: str, key_id: str) -> bool:
        async with self.engine.begin() as conn:
            result = await conn.execute(
                budgets.delete().where(budgets.c.project_id == project_id, budgets.c.key_id == key_id)
            )
        return bool(result.rowcount)

    async def budgets_of(self, project_id: str) -> dict[str, Budget]:
        query = select(budgets).where(budgets.c.project_id == project_id)
        async with self.engine.connect() as conn:
            rows = list(await conn.execute(query))
        return {r.key_id: Budget(r.key_id, Period(r.period), r.limit_nanos, r.limit_tokens) for r in rows}

    async def spent(
        self, project_id: str, key_id: str | None, start: datetime, end: datetime
    ) -> tuple[int, int]:
        """(nano-dollars, tokens) recorded in [start, end): seeds a budget counter, once per period."""
        query = select(
            func.coalesce(func.sum(ledger.c.cost_nanos), 0), func.coalesce(func.sum(TOKENS), 0)
        ).where(
            ledger.c.project_id == project_id,
            ledger.c.created_at >= start,
            ledger.c.created_at < end,
            ledger.c.outcome != SANDBOX,
        )
        if key_id:
            query = query.where(ledger.c.api_key_id == key_id)
        async with self.engine.connect() as conn:
            row = (await conn.execute(query)).one()
        return int(row[0]), int(row[1])
