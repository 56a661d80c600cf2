"""Which model serves a call: aliases, override rules and seed 001's auto-routing, plus savings stats."""

from tollhouse.routing.auto import AutoPick, AutoRouter, BudgetView
from tollhouse.routing.resolver import ModelResolver, Resolution, ResolveInput
from tollhouse.routing.stats import OverrideStats, dollars_text

__all__ = [
    "AutoPick",
    "AutoRouter",
    "BudgetView",
    "ModelResolver",
    "OverrideStats",
    "Resolution",
    "ResolveInput",
    "dollars_text",
]
