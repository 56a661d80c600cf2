"""Prices, usage normalisation and cost. Money is integer nano-dollars computed with Decimal."""

from tollhouse.pricing.cost import Cost, TierRule, compute_cost
from tollhouse.pricing.table import ModelPrice, PriceTable, load_price_table
from tollhouse.pricing.usage import Usage

__all__ = [
    "Cost",
    "ModelPrice",
    "PriceTable",
    "TierRule",
    "Usage",
    "compute_cost",
    "load_price_table",
]
