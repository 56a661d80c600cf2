"""The ``[aliases]``, ``[overrides]`` and ``[routing]`` settings sections.

They live beside the code that reads them so the routing package owns its vocabulary; the
root ``Settings`` object only names the tables.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

#: Built in, so ``model: "sonnet"`` works with no config; ``[aliases]`` adds to or replaces them.
DEFAULT_ALIASES: dict[str, str] = {
    "haiku": "claude-haiku-4-5",
    "sonnet": "claude-sonnet-4-6",
    "opus": "claude-opus-4-8",
}

AUTO_MODEL = "auto"


class _Section(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid", populate_by_name=True)


class OverrideRule(_Section):
    """One override: when every condition holds, ``from`` is served as ``to``. First match wins."""

    id: str | None = Field(default=None, description="Name shown in the ledger and stats; default `rule-N`.")
    from_model: str = Field(
        default="*",
        alias="from",
        description="Written `from` in the file: the requested model, exact or glob (`claude-sonnet-4-5*`); "
        "`auto` matches calls with no model. Case-insensitive; `4.5` and `4-5` are the same.",
    )
    to: str = Field(description="Model served instead (an alias is resolved).")
    projects: tuple[str, ...] = Field(default=(), description="Only for these projects (globs); empty: all.")
    endpoints: tuple[str, ...] = Field(
        default=(), description="Only on these routes (`/v1/messages`, globs); empty: every gateway route."
    )
    headers: dict[str, str] = Field(
        default_factory=dict,
        description="Only when each request header (name lower-case) matches its glob; `*` means present.",
    )
    min_prompt_tokens: int | None = Field(
        default=None, ge=0, description="Only when the prompt estimate is above this many tokens."
    )
    max_prompt_tokens: int | None = Field(
        default=None, ge=0, description="Only when the prompt estimate is at most this many tokens."
    )
    tools: bool | None = Field(
        default=None,
        description="`true`: only when the request offers tools; `false`: only when it offers none.",
    )
    thinking: bool | None = Field(
        default=None,
        description="`true`: only when extended thinking / reasoning is requested; `false`: only when not.",
    )


class OverridesSettings(_Section):
    """Model override rules (seed 000), applied on every gateway route."""

    enabled: bool = Field(default=False, description="Apply the override rules.")
    rules: tuple[OverrideRule, ...] = Field(
        default=(),
        description='Ordered rules, first match wins: `[["claude-sonnet-4-5*", "claude-haiku-4-5"]]` pairs '
        "(from, to) or `[[overrides.rules]]` tables with conditions.",
    )

    @field_validator("rules", mode="before")
    @classmethod
    def _pairs_to_tables(cls, value: Any) -> Any:
        if not isinstance(value, list | tuple):
            return value
        out: list[Any] = []
        for item in value:
            if isinstance(item, list | tuple):
                if len(item) != 2 or not all(isinstance(part, str) for part in item):
                    raise ValueError("a rule pair is [from, to], two strings")
                out.append({"from": item[0], "to": item[1]})
            else:
                out.append(item)
        return out

    @model_validator(mode="after")
    def _unique_ids(self) -> OverridesSettings:
        ids = [rule.id for rule in self.rules if rule.id]
        repeated = sorted({i for i in ids if ids.count(i) > 1})
        if repeated:
            raise ValueError(f"override rule ids must be unique, repeated: {', '.join(repeated)}")
        return self


class RoutingSettings(_Section):
    """Auto-routing (seed 001) for calls whose `model` is absent or `auto`."""

    enabled: bool = Field(default=True, description="Pick a model when the request names none (or `auto`).")
    cheap_model: str = Field(default="haiku", description="For low budgets and simple prompts.")
    mid_model: str = Field(default="sonnet", description="For complex prompts and the default.")
    long_context_model: str = Field(default="opus", description="For contexts above `long_context_tokens`.")
    default_model: str | None = Field(default=None, description="When no rule decides; default `mid_model`.")
    low_budget_tokens: int = Field(
        default=1000, ge=0, description="Remaining budget tokens below which the cheap model is forced."
    )
    low_budget_usd: float = Field(
        default=0.05, ge=0, description="Remaining budget (USD) below which the cheap model is forced."
    )
    long_context_tokens: int = Field(
        default=10_000,
        ge=0,
        description="Context estimate (prompt + `max_tokens`) above which the long-context model is used.",
    )
    simple_max_chars: int = Field(
        default=100, ge=0, description="A prompt this short with a simple keyword goes to the cheap model."
    )
    simple_keywords: tuple[str, ...] = Field(
        default=("list", "format", "count", "convert", "translate", "summarize", "extract", "rename", "sort"),
        description="Words marking a simple prompt (whole words, case-insensitive).",
    )
    complex_keywords: tuple[str, ...] = Field(
        default=(
            "analyze",
            "analyse",
            "architect",
            "architecture",
            "debug",
            "design",
            "refactor",
            "optimize",
            "investigate",
            "prove",
            "reason",
            "security",
            "review",
        ),
        description="Words marking a complex prompt, sent to the mid model.",
    )
