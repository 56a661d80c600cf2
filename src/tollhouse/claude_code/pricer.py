"""Both costs of a transcript response: the ledger's (Anthropic's rules) and ccusage's, for parity.

The price table loads on first need: a scan that remembers the rates of the models it has seen
(``known``, per price snapshot: see ``fast_scan``) prices new lines of those models without
loading the table, ``decimal`` or ccusage's tables at all.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

from tollhouse.pricing.tiers import LONG_CONTEXT_THRESHOLD, TierRule

if TYPE_CHECKING:
    from decimal import Decimal

    from tollhouse.claude_code.ccusage_pricing import CcusagePricer
    from tollhouse.pricing import ModelPrice, PriceTable, Usage

SYNTHETIC_MODEL = "<synthetic>"
# A model's base rates as exact integers: (input, cache read, 5-minute write, 1-hour write, output)
# in nano-dollars times ``denominator``, and that denominator.
Rates = tuple[tuple[int, ...], int]


class Pricer:
    """Both costs for a usage: the ledger's (Anthropic's rules) and ccusage's, for parity.

    For most models and requests the two rules agree, so ccusage's is computed only when they
    can differ (a long-context request, a rate ccusage defaults differently): half the work.
    """

    def __init__(
        self, table: PriceTable | Callable[[], PriceTable], known: Mapping[str, Rates] | None = None
    ) -> None:
        self._table: PriceTable | None = None if callable(table) else table
        self._load: Callable[[], PriceTable] | None = table if callable(table) else None
        self._ccusage: CcusagePricer | None = None
        self._agree: dict[str, bool] = {}
        # model -> (rates, denominator, both rules agree) or None (no price); ``known`` ones agree
        self._fast: dict[str, tuple[tuple[int, ...], int, bool] | None] = {
            model: (rates, denominator, True) for model, (rates, denominator) in (known or {}).items()
        }
        self.learned = False  # rates worth remembering were computed from the table

    @property
    def table(self) -> PriceTable:
        if self._table is None:
            assert self._load is not None
            self._table = self._load()
        return self._table

    @property
    def loaded(self) -> bool:
        return self._table is not None

    @property
    def ccusage(self) -> CcusagePricer:
        if self._ccusage is None:
            from tollhouse.claude_code.ccusage_pricing import CcusagePricer

            self._ccusage = CcusagePricer(self.table)
        return self._ccusage

    def learn(self, rates: Mapping[str, Rates]) -> None:
        """Rates another process computed from the same table (a parsing process's)."""
        for model, (numbers, denominator) in rates.items():
            if model not in self._fast:
                self._fast[model] = (numbers, denominator, True)
                self.learned = True

    def known_rates(self) -> dict[str, Rates]:
        """The rates of every model priced on the fast path so far (both rules agreeing)."""
        return {model: (f[0], f[1]) for model, f in self._fast.items() if f is not None and f[2]}

    def price(self, model: str | None, usage: Usage, service_tier: str | None) -> tuple[int, int, bool, bool]:
        if model == SYNTHETIC_MODEL or usage.total_tokens == 0:
            return 0, 0, False, False
        if not model:
            return 0, 0, True, True
        if usage.prompt_tokens <= LONG_CONTEXT_THRESHOLD and (
            service_tier is None or service_tier in _PLAIN_TIERS
        ):
            fast = self._fast.get(model, _UNSET)
            if fast is _UNSET:
                fast = self._fast[model] = self._fast_rates(model)
            if fast is not None:
                # Below 200k input at the standard tier the shared engine uses the base rates:
                # the same sum in exact integers (rates as fractions over one denominator).
                rates, denominator, agree = fast
                quotient = base_cost(
                    rates, denominator, usage.input_tokens, usage.cache_read_tokens,
                    usage.cache_write_5m_tokens, usage.cache_write_1h_tokens, usage.output_tokens,
                )  # fmt: skip
                if agree and usage.output_tokens <= LONG_CONTEXT_THRESHOLD:
                    return quotient, quotient, False, False
                return quotient, self.ccusage.cost(model, usage).nanos, False, self._ccusage_unpriced(model)
        from tollhouse.pricing.cost import compute_cost

        price = self.table.lookup(model)
        calc = compute_cost(usage, price, tier_rule=TierRule.ANTHROPIC, service_tier=service_tier)
        if (
            price is not None
            and usage.prompt_tokens <= LONG_CONTEXT_THRESHOLD
            and usage.output_tokens <= LONG_CONTEXT_THRESHOLD
            and (service_tier or "standard") in ("standard", "default")
            and self._rates_agree(model, price)
        ):
            return calc.nanos, calc.nanos, False, False
        ccusage = self.ccusage.cost(model, usage)
        return calc.nanos, ccusage.nanos, calc.unpriced, ccusage.unpriced

    def price_parts(
        self, model: str | None, i: int, cr: int, w5: int, w1: int, o: int, service_tier: str | None
    ) -> tuple[int, int, bool, bool]:
        """:meth:`price` from the five token counts (no :class:`Usage` on the common path)."""
        prompt = i + cr + w5 + w1
        if prompt + o == 0 or model == SYNTHETIC_MODEL or not model:
            return self.price(model, _usage(i, cr, w5, w1, o), service_tier)
        if (
            prompt <= LONG_CONTEXT_THRESHOLD
            and o <= LONG_CONTEXT_THRESHOLD
            and (service_tier is None or service_tier in _PLAIN_TIERS)
        ):
            fast = self._fast.get(model, _UNSET)
            if fast is _UNSET:
                fast = self._fast[model] = self._fast_rates(model)
            if fast is not None and fast[2]:
                quotient = base_cost(fast[0], fast[1], i, cr, w5, w1, o)
                return quotient, quotient, False, False
        return self.price(model, _usage(i, cr, w5, w1, o), service_tier)

    def _fast_rates(self, model: str) -> tuple[tuple[int, ...], int, bool] | None:
        price = self.table.lookup(model)
        if price is None:
            return None
        ratios = [rate.as_integer_ratio() for rate in _base_rates(price)]
        denominator = math.lcm(*(d for _, d in ratios))
        # order: input, cache read, 5-minute write, 1-hour write, output; nano-dollars
        rates = tuple(n * (denominator // d) * 1_000_000_000 for n, d in ratios)
        order = (rates[0], rates[2], rates[3], rates[4], rates[1])
        agree = self._rates_agree(model, price)
        self.learned = self.learned or agree
        return order, denominator, agree

    def _ccusage_unpriced(self, model: str) -> bool:
        return self.ccusage.price(model) is None

    def _rates_agree(self, model: str, price: ModelPrice) -> bool:
        agree = self._agree.get(model)
        if agree is None:
            other = self.ccusage.price(model)
            agree = other is not None and _base_rates(price) == _base_rates(other)
            self._agree[model] = agree
        return agree


_UNSET: Any = object()
_PLAIN_TIERS = frozenset({"standard", "default"})


def _base_rates(price: ModelPrice) -> tuple[Decimal, ...]:
    """The per-token rates below 200k tokens, with the shared engine's defaults for gaps."""
    return (
        price.input,
        price.output,
        price.cache_read if price.cache_read is not None else price.input,
        price.cache_write_5m if price.cache_write_5m is not None else price.input,
        price.cache_write_1h if price.cache_write_1h is not None else price.input * 2,
    )


def base_cost(rates: tuple[int, ...], denominator: int, i: int, cr: int, w5: int, w1: int, o: int) -> int:
    """Nano-dollars at a model's base rates (see ``Rates``), exactly: the shared engine's sum below
    200k tokens at the standard tier, rounded half-even as ``compute_cost`` rounds."""
    total = i * rates[0] + cr * rates[1] + w5 * rates[2] + w1 * rates[3] + o * rates[4]
    quotient, remainder = divmod(total, denominator)
    if 2 * remainder > denominator or (2 * remainder == denominator and quotient & 1):
        quotient += 1
    return quotient


def _usage(i: int, cr: int, w5: int, w1: int, o: int) -> Usage:
    from tollhouse.pricing.usage import Usage

    return Usage(i, cr, w5, w1, o)
