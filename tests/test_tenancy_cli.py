"""The `projects`, `keys` and `budgets` commands, on a real SQLite file."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from tollhouse.cli import main


@pytest.fixture
def run(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):  # type: ignore[no-untyped-def]
    monkeypatch.setenv("TOLLHOUSE_DATA_DIR", str(tmp_path / "data"))

    def invoke(*args: str) -> str:
        result = CliRunner().invoke(main, list(args))
        assert result.exit_code == 0, result.output
        return result.output

    return invoke


def test_projects_keys_and_budgets_from_the_command_line(run) -> None:  # type: ignore[no-untyped-def]
    created = run("projects", "create", "demo", "--plan", "pro")
    assert "th_proj_" in created
    pid = run("projects", "list").split("\t")[0]
    assert pid.startswith("proj_") and "\tpro\t" in run("projects", "list")
    key = run("keys", "create", pid, "--test", "--name", "ci")
    assert "th_test_" in key
    key_id = key.split("key id: ")[1].split()[0]
    listing = run("keys", "list", pid)
    assert key_id in listing and "th_test_" in listing and key.split("api key: ")[1].split()[0] not in listing
    shown = run("budgets", "set", pid, "--period", "day", "--usd", "2.5")
    assert "limit_usd: 2.5" in shown and "period: day" in shown
    assert "remaining_usd: 2.5" in run("budgets", "show", pid)
    run("keys", "revoke", pid, key_id)
    assert key_id not in run("keys", "list", pid)
    failed = CliRunner().invoke(main, ["budgets", "set", pid, "--period", "day"])
    assert failed.exit_code != 0 and "limit_usd" in failed.output
