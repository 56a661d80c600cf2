"""Shared fixtures: a real fake provider on loopback and real Tollhouse servers in threads."""

from __future__ import annotations

import asyncio
import os
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import uvicorn
from sqlalchemy import select
from sqlalchemy.ext.asyncio import create_async_engine

from tests.fakes.provider import FakeProviderThread
from tollhouse.app import create_app
from tollhouse.db.tables import ledger
from tollhouse.settings import Settings, load_settings

OPENAI_KEY = "sk-fake-openai-provider-key"
ANTHROPIC_KEY = "sk-ant-fake-provider-key"


@pytest.fixture(autouse=True)
def _isolated_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """No test reads the developer's config, data dir or Claude transcripts."""
    for key in list(os.environ):
        if key.startswith("TOLLHOUSE_") and not key.startswith("TOLLHOUSE_TEST_"):
            monkeypatch.delenv(key)
    monkeypatch.setenv("CLAUDE_CONFIG_DIR", str(tmp_path / "no-claude"))
    monkeypatch.setenv("HOME", str(tmp_path / "home"))


@pytest.fixture(scope="session")
def fake_provider() -> Iterator[FakeProviderThread]:
    with FakeProviderThread() as provider:
        yield provider


@pytest.fixture
def fake(fake_provider: FakeProviderThread) -> Iterator[FakeProviderThread]:
    fake_provider.reset()
    yield fake_provider
    fake_provider.reset()


class ServerThread:
    """A real uvicorn server for one app, on a free loopback port, in a thread."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.app = create_app(settings)
        config = uvicorn.Config(self.app, host="127.0.0.1", port=0, log_level="warning", lifespan="on")
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(target=self._server.run, name="tollhouse-test-server")

    def start(self) -> None:
        self._thread.start()
        deadline = time.monotonic() + 15
        while not self._server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError("the Tollhouse test server did not start")
            time.sleep(0.01)

    def stop(self) -> None:
        self._server.should_exit = True
        self._thread.join(timeout=30)

    @property
    def port(self) -> int:
        return int(self._server.servers[0].sockets[0].getsockname()[1])

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def rows(self, **where: Any) -> list[dict[str, Any]]:
        """Ledger rows (oldest first), read with a separate engine, as an outside reader would."""

        async def read() -> list[dict[str, Any]]:
            engine = create_async_engine(self.settings.resolved_database_url)
            try:
                query = select(ledger).order_by(ledger.c.created_at, ledger.c.id)
                for column, value in where.items():
                    query = query.where(ledger.c[column] == value)
                async with engine.connect() as conn:
                    return [dict(row._mapping) for row in await conn.execute(query)]
            finally:
                await engine.dispose()

        return asyncio.run(read())

    def wait_rows(self, count: int, timeout: float = 10.0, **where: Any) -> list[dict[str, Any]]:
        deadline = time.monotonic() + timeout
        while True:
            found = self.rows(**where)
            if len(found) >= count or time.monotonic() > deadline:
                return found
            time.sleep(0.02)


def provider_table(fake: FakeProviderThread, **extra: Any) -> list[dict[str, Any]]:
    return [
        {
            "name": "fake-openai",
            "protocol": "openai",
            "base_url": fake.openai_base_url,
            "api_key": OPENAI_KEY,
            "models": ["gpt-*", "text-embedding-*", "o3*"],
            "max_retries": 1,
            **extra,
        },
        {
            "name": "fake-anthropic",
            "protocol": "anthropic",
            "base_url": fake.anthropic_base_url,
            "api_key": ANTHROPIC_KEY,
            "models": ["claude-*"],
            "max_retries": 1,
            **extra,
        },
    ]


StartGateway = Callable[..., ServerThread]


@pytest.fixture
def start_gateway(tmp_path: Path) -> Iterator[StartGateway]:
    servers: list[ServerThread] = []

    def start(**overrides: Any) -> ServerThread:
        values: dict[str, Any] = {
            "data_dir": tmp_path / f"data{len(servers)}",
            "ledger": {"flush_interval_ms": 10},
            "gateway": {"retry_backoff_s": 0.01},
            "claude_code": {"enabled": False},
            # Most tests repeat one request and expect the provider to see each: the cache tests
            # (tests/test_cost_cutting_*.py) turn it on.
            "cache": {"enabled": False},
        }
        values.update(overrides)
        server = ServerThread(load_settings(None, **values))
        server.start()
        servers.append(server)
        return server

    yield start
    for server in servers:
        server.stop()


@pytest.fixture
def gateway(start_gateway: StartGateway, fake: FakeProviderThread) -> ServerThread:
    """A gateway with an OpenAI-protocol and an Anthropic provider, both the fake."""
    return start_gateway(providers=provider_table(fake))


@pytest.fixture(autouse=True)
def _close_sdk_clients(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """SDK clients made in a test are closed after it, so no socket outlives its test."""
    import anthropic
    import openai

    made: list[Any] = []
    for module, name in ((openai, "OpenAI"), (anthropic, "Anthropic")):
        original = getattr(module, name)

        class Tracked(original):  # type: ignore[misc, valid-type]
            def __init__(self, *args: Any, **kwargs: Any) -> None:
                super().__init__(*args, **kwargs)
                made.append(self)

        monkeypatch.setattr(module, name, Tracked)
    yield
    for sdk_client in made:
        sdk_client.close()
