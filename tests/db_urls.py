"""Database URLs for tests: a SQLite file always; PostgreSQL when scripts/services started one."""

from __future__ import annotations

import os

import pytest


def postgres_url() -> str:
    """The test PostgreSQL URL. Skips locally without one; fails in CI, which always has one."""
    url = os.environ.get("TOLLHOUSE_TEST_DATABASE_URL")
    if not url:
        if os.environ.get("CI") == "true":
            pytest.fail("CI must provide TOLLHOUSE_TEST_DATABASE_URL (scripts/services start)")
        pytest.skip('no PostgreSQL: run `eval "$(scripts/services start)"` first')
    return url


def redis_url() -> str:
    url = os.environ.get("TOLLHOUSE_TEST_REDIS_URL")
    if not url:
        if os.environ.get("CI") == "true":
            pytest.fail("CI must provide TOLLHOUSE_TEST_REDIS_URL (scripts/services start)")
        pytest.skip('no Redis: run `eval "$(scripts/services start)"` first')
    return url
