"""Projects known to this server. A project named by a call is created on first use."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncEngine

from tollhouse.db.tables import projects

DEFAULT_PROJECT = "default"


class ProjectDirectory:
    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine
        self._known: set[str] = set()
        self._lock = asyncio.Lock()

    async def ensure(self, project_id: str) -> None:
        """Make sure the project exists; a dict lookup once it has been seen."""
        if project_id in self._known:
            return
        async with self._lock:
            if project_id in self._known:
                return
            async with self._engine.connect() as conn:
                found = await conn.scalar(select(projects.c.id).where(projects.c.id == project_id))
            if found is None:
                try:
                    async with self._engine.begin() as conn:
                        await conn.execute(
                            projects.insert().values(id=project_id, name=project_id, created_at=datetime.now(UTC))
                        )
                except IntegrityError:
                    pass  # another process created it first
            self._known.add(project_id)
