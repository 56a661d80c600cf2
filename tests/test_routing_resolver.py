"""Model resolution: aliases, seed 000's override rules, conditions, and seed 001's auto-routing."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tollhouse.errors import ConfigError, MissingField
from tollhouse.routing import BudgetView, ModelResolver, ResolveInput
from tollhouse.settings import load_settings


def resolver(**values: Any) -> ModelResolver:
    return ModelResolver.from_settings(load_settings(None, **values))


def ask(
    r: ModelResolver,
    model: str | None,
    *,
    project: str = "default",
    headers: dict[str, str] | None = None,
    endpoint: str = "/v1/messages",
    budget: BudgetView | None = None,
    **body: Any,
) -> Any:
    body.setdefault("messages", [{"role": "user", "content": "hello there"}])
    return r.resolve(ResolveInput(model, project, headers or {}, body, endpoint, budget))


def test_seed_000_simple_rule_form_from_toml(tmp_path: Path) -> None:
    path = tmp_path / "tollhouse.toml"
    path.write_text(
        '[overrides]\nenabled = true\nrules = [["claude-sonnet-4-5*", "claude-haiku-4-5"]]   # [from, to]\n'
    )
    r = ModelResolver.from_settings(load_settings(path))
    got = ask(r, "claude-sonnet-4-5-20250929")
    assert (got.served_model, got.rule_id, got.overridden) == ("claude-haiku-4-5", "rule-1", True)
    # The seed's own stats show the dotted spelling; a rule treats 4.5 and 4-5 alike.
    assert ask(r, "claude-sonnet-4.5-20250929").served_model == "claude-haiku-4-5"
    assert ask(r, "Claude-Sonnet-4-5").served_model == "claude-haiku-4-5"
    untouched = ask(r, "claude-opus-4-5")
    assert (untouched.served_model, untouched.rule_id, untouched.reason) == (
        "claude-opus-4-5",
        None,
        "as requested",
    )


def test_rules_are_ignored_unless_enabled() -> None:
    r = resolver(overrides={"rules": [["claude-sonnet-4-5*", "claude-haiku-4-5"]]})
    assert ask(r, "claude-sonnet-4-5").served_model == "claude-sonnet-4-5"
    assert (r.overrides_enabled, r.rule_count) == (False, 1)


def test_aliases_builtin_and_configured() -> None:
    r = resolver(aliases={"fast": "gpt-4o-mini", "opus": "claude-opus-4-5"})
    assert ask(r, "haiku").served_model == "claude-haiku-4-5"
    got = ask(r, "Fast")
    assert (got.served_model, got.alias, got.rule_id) == ("gpt-4o-mini", "Fast", None)
    assert ask(r, "opus").served_model == "claude-opus-4-5"  # configured beats built in


def test_alias_then_rule_and_rule_target_alias() -> None:
    r = resolver(overrides={"enabled": True, "rules": [["sonnet", "haiku"], ["claude-opus-4*", "sonnet"]]})
    assert ask(r, "sonnet").served_model == "claude-haiku-4-5"  # a rule may name the alias
    got = ask(r, "opus")  # alias expanded first, then matched by the expanded name
    assert (got.served_model, got.rule_id) == ("claude-sonnet-4-6", "rule-2")


def test_first_match_wins() -> None:
    r = resolver(
        overrides={
            "enabled": True,
            "rules": [
                {"id": "big", "from": "claude-*", "to": "claude-opus-4-5", "min_prompt_tokens": 1000},
                {"id": "rest", "from": "claude-*", "to": "claude-haiku-4-5"},
            ],
        }
    )
    assert ask(r, "claude-sonnet-4-5").rule_id == "rest"
    long = [{"role": "user", "content": "x" * 8000}]
    assert ask(r, "claude-sonnet-4-5", messages=long).rule_id == "big"


def test_conditions_for_coding_agents() -> None:
    r = resolver(
        overrides={
            "enabled": True,
            "rules": [
                {"id": "team", "from": "*", "to": "gpt-4o-mini", "projects": ["team-*"]},
                {"id": "sub", "to": "claude-haiku-4-5", "headers": {"x-agent": "subagent*"}},
                {"id": "tools", "from": "claude-sonnet*", "to": "claude-sonnet-4-5", "tools": True},
                {"id": "think", "from": "claude-sonnet*", "to": "claude-opus-4-5", "thinking": True},
                {"id": "chat", "from": "gpt-4o", "to": "gpt-4o-mini", "endpoints": ["/v1/chat/*"]},
                {"id": "small", "from": "claude-opus*", "to": "claude-haiku-4-5", "max_prompt_tokens": 50},
            ],
        }
    )
    assert ask(r, "claude-opus-4-5", project="team-a").rule_id == "team"
    assert ask(r, "claude-opus-4-5", headers={"x-agent": "SubAgent-7"}).rule_id == "sub"
    assert ask(r, "claude-opus-4-5", headers={"x-agent": "main"}).rule_id == "small"
    tools = [{"name": "read", "input_schema": {}}]
    assert ask(r, "claude-sonnet-4-6", tools=tools).rule_id == "tools"
    assert ask(r, "claude-sonnet-4-6", thinking={"type": "enabled", "budget_tokens": 1024}).rule_id == "think"
    assert ask(r, "claude-sonnet-4-6", thinking={"type": "disabled"}).rule_id is None
    assert ask(r, "gpt-4o", endpoint="/v1/chat/completions").rule_id == "chat"
    assert ask(r, "gpt-4o", endpoint="/v1/completions").rule_id is None
    assert ask(r, "o3", endpoint="/v1/chat/completions", reasoning_effort="high").rule_id is None


def test_invalid_rules_name_the_key(tmp_path: Path) -> None:
    path = tmp_path / "bad.toml"
    path.write_text('[overrides]\nenabled = true\nrules = [["only-one"]]\n')
    with pytest.raises(ConfigError, match=r"overrides\.rules"):
        load_settings(path)
    path.write_text('[[overrides.rules]]\nid = "a"\nto = "x"\n[[overrides.rules]]\nid = "a"\nto = "y"\n')
    with pytest.raises(ConfigError, match="unique"):
        load_settings(path)
    path.write_text('[[overrides.rules]]\nfrom = "x"\n')
    with pytest.raises(ConfigError, match=r"overrides\.rules\.0\.to"):
        load_settings(path)


def test_rule_tables_in_toml(tmp_path: Path) -> None:
    path = tmp_path / "tollhouse.toml"
    path.write_text(
        """
[overrides]
enabled = true

[[overrides.rules]]
id = "long-context"
from = "claude-*"
to = "claude-sonnet-4-6"
min_prompt_tokens = 100

[overrides.rules.headers]
"X-Project-Tier" = "free"
"""
    )
    r = ModelResolver.from_settings(load_settings(path))
    body_messages = [{"role": "user", "content": "y" * 1000}]
    got = ask(r, "claude-opus-4-5", headers={"x-project-tier": "free"}, messages=body_messages)
    assert got.rule_id == "long-context"
    assert (
        ask(r, "claude-opus-4-5", headers={"x-project-tier": "paid"}, messages=body_messages).rule_id is None
    )


def auto(r: ModelResolver, prompt: str, **kwargs: Any) -> Any:
    return ask(
        r, None, endpoint="/v1/chat/completions", messages=[{"role": "user", "content": prompt}], **kwargs
    )


def test_auto_routing_follows_seed_001() -> None:
    r = resolver()
    low = auto(r, "Analyze this codebase", budget=BudgetView(remaining_tokens=850))
    assert (low.served_model, low.auto) == ("claude-haiku-4-5", True)
    assert low.reason.startswith("Low budget (850 tokens")
    broke = auto(r, "Analyze this codebase", budget=BudgetView(remaining_nanos=10_000_000))
    assert broke.served_model == "claude-haiku-4-5"
    big = auto(r, "Summarize", max_tokens=12_000)
    assert (big.served_model, big.reason.split(" (")[0]) == ("claude-opus-4-8", "Large context")
    simple = auto(r, "List the files in this folder")
    assert simple.served_model == "claude-haiku-4-5" and "'list'" in simple.reason
    hard = auto(r, "Please analyze why this test is flaky and propose a fix " + "with details " * 10)
    assert hard.served_model == "claude-sonnet-4-6"
    assert hard.reason.startswith("Complex reasoning keywords")
    plain = auto(r, "Write a short poem about the sea, in the style of an old sailor's song, with rhymes")
    assert (plain.served_model, plain.reason.split(" (")[0]) == ("claude-sonnet-4-6", "Medium complexity")
    assert ask(r, "auto", endpoint="/v1/chat/completions").auto


def test_auto_routing_configured_and_recommend() -> None:
    r = resolver(
        routing={"cheap_model": "gpt-4o-mini", "mid_model": "gpt-4o", "simple_keywords": ["hello"]},
    )
    assert auto(r, "hello there").served_model == "gpt-4o-mini"
    pick = r.recommend("Analyze this codebase", 5000, BudgetView(remaining_tokens=99_000))
    assert (pick.choice, pick.rule) == ("gpt-4o", "complex")
    assert "Complex reasoning keywords" in pick.reasoning


def test_auto_routing_off_requires_a_model() -> None:
    r = resolver(routing={"enabled": False})
    with pytest.raises(MissingField):
        auto(r, "hello")


def test_override_rules_see_auto_calls() -> None:
    r = resolver(
        overrides={"enabled": True, "rules": [{"from": "auto", "to": "gpt-4o-mini", "projects": ["ci"]}]}
    )
    assert auto(r, "Analyze it", project="ci").served_model == "gpt-4o-mini"
    assert auto(r, "Analyze it", project="dev").served_model == "claude-sonnet-4-6"
