"""Settings: file plus environment, validated at start with errors that name the key."""

from __future__ import annotations

from pathlib import Path

import pytest

from tollhouse import settings_doc
from tollhouse.errors import ConfigError
from tollhouse.settings import load_settings

ROOT = Path(__file__).resolve().parents[1]


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "tollhouse.toml"
    path.write_text(text)
    return path


def test_defaults() -> None:
    settings = load_settings()
    assert (settings.host, settings.port, settings.timezone) == ("127.0.0.1", 8080, "UTC")
    assert settings.is_loopback
    assert settings.resolved_database_url.startswith("sqlite+aiosqlite:///")


def test_file_then_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = write(
        tmp_path,
        """
port = 9000
timezone = "Europe/Paris"
[ledger]
batch_size = 50
[[providers]]
name = "openai"
protocol = "openai"
base_url = "https://api.openai.com/v1"
api_key_env = "MY_OPENAI_KEY"
models = ["gpt-4o*"]
""",
    )
    monkeypatch.setenv("TOLLHOUSE_PORT", "9100")
    monkeypatch.setenv("TOLLHOUSE_LEDGER__FLUSH_INTERVAL_MS", "50")
    monkeypatch.setenv("MY_OPENAI_KEY", "sk-from-env")
    settings = load_settings(path)
    assert settings.port == 9100  # the environment wins
    assert settings.timezone == "Europe/Paris"
    assert (settings.ledger.batch_size, settings.ledger.flush_interval_ms) == (50, 50)
    assert settings.providers[0].resolved_api_key() == "sk-from-env"
    monkeypatch.setenv("TOLLHOUSE_CONFIG", str(path))
    assert load_settings().timezone == "Europe/Paris"


def test_settings_are_frozen() -> None:
    settings = load_settings()
    with pytest.raises(Exception, match="frozen"):
        settings.port = 1  # type: ignore[misc]


@pytest.mark.parametrize(
    ("text", "names"),
    [
        ("port = 70000", "port"),
        ('timezone = "Mars/Olympus"', "timezone"),
        ("[ledger]\nbatch_size = 0", "ledger.batch_size"),
        ('[[providers]]\nname = "x"\nprotocol = "grpc"\nbase_url = "u"', "providers.0.protocol"),
        ("surprise = 1", "surprise"),
        (
            '[[providers]]\nname="a"\nprotocol="openai"\nbase_url="u"\n[[providers]]\nname="a"\nprotocol="openai"\nbase_url="u"',
            "unique",
        ),
    ],
)
def test_invalid_config_names_the_key(tmp_path: Path, text: str, names: str) -> None:
    with pytest.raises(ConfigError) as caught:
        load_settings(write(tmp_path, text))
    assert names in str(caught.value)


def test_missing_or_broken_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="not found"):
        load_settings(tmp_path / "nope.toml")
    with pytest.raises(ConfigError, match="not valid TOML"):
        load_settings(write(tmp_path, "port = = 1"))


def test_off_loopback_is_detected() -> None:
    assert not load_settings(host="0.0.0.0").is_loopback
    assert load_settings(host="::1").is_loopback
    assert load_settings(host="localhost").is_loopback


def test_the_readme_settings_table_is_current() -> None:
    """Regenerate with ``python -m tollhouse.settings_doc --write``."""
    readme = (ROOT / "README.md").read_text()
    block = readme[
        readme.index(settings_doc.BEGIN) + len(settings_doc.BEGIN) : readme.index(settings_doc.END)
    ]
    assert block.strip() == settings_doc.table().strip()
