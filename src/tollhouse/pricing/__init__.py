"""Prices, usage normalisation and cost. Money is integer nano-dollars computed with Decimal.

The names below load with their module on first use: importing ``tollhouse.pricing.tiers`` for
a report must not also load the price table and ``decimal``.
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from tollhouse.pricing.cost import Cost, compute_cost
    from tollhouse.pricing.table import ModelPrice, PriceTable, load_price_table
    from tollhouse.pricing.tiers import TierRule
    from tollhouse.pricing.usage import Usage

_MODULE_OF = {
    "Cost": "cost",
    "ModelPrice": "table",
    "PriceTable": "table",
    "TierRule": "tiers",
    "Usage": "usage",
    "compute_cost": "cost",
    "load_price_table": "table",
}

__all__ = [
    "Cost",
    "ModelPrice",
    "PriceTable",
    "TierRule",
    "Usage",
    "compute_cost",
    "load_price_table",
]


def __getattr__(name: str) -> object:
    module = _MODULE_OF.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(import_module(f"{__name__}.{module}"), name)
