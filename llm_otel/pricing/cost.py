"""Cost arithmetic: one integer formula per call, read out as exact Decimals or as floats for spans.

Token semantics are OpenAI's usage conventions, which the instrumentors keep for every provider:
``input_tokens`` INCLUDES cache reads and cache writes; ``output_tokens`` INCLUDES reasoning tokens::

    input  = (input - cache_read - cache_write) * input_price + cache_read * cached_input_price
             + cache_write * cache_write_price
    output = (output - reasoning) * output_price + reasoning * reasoning_price
    total  = input + output

Missing or negative counts count as 0 (so does an uncached remainder below 0); reasoning tokens are capped
at the output tokens; an entry without a ``reasoning`` price bills them at the output price.

Audio tokens (a subset of input, resp. output, as OpenAI reports them) are billed at the entry's audio
prices and the rest at the text prices (:meth:`Priced.pico_audio`)::

    input  = (input - cache_read - cache_write - audio_in) * input_price + cache_read * cached_input_price
             + cache_write * cache_write_price + audio_in * input_audio_price
    output = (output - reasoning - audio_out) * output_price + reasoning * reasoning_price
             + audio_out * output_audio_price

A call with audio tokens is unpriced (never billed at the text rate) when the entry has no price for that
direction's audio, when it also reports cached tokens (the count does not say which modality was cached), or
when the audio count exceeds what it is a part of. Calls without audio tokens never take this path. A tier's
prices replace the base ones for every token of a call whose input exceeds the tier's threshold.

Exactness: :class:`Priced` compiles an entry's per-million prices once into integer per-token rates, in
units of 10**-scale USD: scale 12 (picodollars) for every bundled price, more for a user price with more
than 6 decimal places. :meth:`Priced.pico` multiplies the token counts by these integers and rounds the
input and the output part half-even to whole picodollars (nothing to round at scale 12). It is integer
arithmetic, so it is exact and no decimal context, ours or the application's, is involved. Every amount is
a whole number of 1e-12 USD, read out two ways:

* :meth:`CostCalculator.cost`: a :class:`Cost` of ``Decimal`` amounts with exactly 12 decimal places.
* :meth:`CostCalculator.cost_floats`: floats for the span attributes, on every LLM call. ``n / 10**12`` on
  ints is correctly rounded in CPython, as is ``float()`` of a Decimal, so each float equals ``float()`` of
  the matching Decimal exactly. No Decimal work. For an entry without tiers and with whole-picodollar rates
  (most of them) it runs :meth:`Priced.pico`'s formula inline instead of calling it, which saves a Python
  call and a tuple, about 800 instructions per LLM call; tests/test_pricing.py checks that both read-outs
  agree for every bundled entry.

A total below $1000 has at most 15 significant digits, which an IEEE double holds exactly in the sense that
``Decimal(repr(float(total))) == total``: the cost-record exporter relies on this when it reads the
``gen_ai.usage.cost`` double back.

Statuses: ``priced``; ``local`` (no entry matched and the provider is a self-hosted server, by default
``lookup.SELF_HOSTED_PROVIDERS``: cost 0, source ``"local"``, whatever the usage); ``unpriced`` (no entry
matched, or the call reported no token counts at all: no cost, never 0, so "free" and "unknown" stay
distinct; :meth:`CostCalculator.unpriced_reason` tells the two apart).
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import ROUND_HALF_EVEN, Context, Decimal
from typing import Final, final

from llm_otel.semconv import (
    PRICING_LOCAL,
    PRICING_PRICED,
    PRICING_UNPRICED,
    UNPRICED_NO_USAGE,
    UNPRICED_UNKNOWN_MODEL,
)

from .price_file import Price, decimal_parts

#: Converts whole picodollars to Decimal: exact for any amount below 10**48 USD.
_CTX: Final = Context(prec=60, rounding=ROUND_HALF_EVEN)
_PICO: Final = 10**12
_MEMO_MAX: Final = 4096  # distinct (provider, model) pairs kept; the memo is cleared beyond that

#: ``(status, source, total, input, output)``: what :meth:`CostCalculator.cost_floats` returns.
Floats = tuple[str, str | None, float | None, float | None, float | None]
#: Per-token rates in units of 10**-scale USD: input, cached input, cache write, output, reasoning (None:
#: billed as output).
Rates = tuple[int, int, int, int, int | None]


@dataclass(frozen=True, slots=True)
class Cost:
    """Cost of one call. ``total``/``input``/``output`` are USD; ``None`` when unpriced.

    Priced amounts have exactly 12 decimal places (so ``str()`` of a tiny amount may read ``5.50000E-7``);
    use ``format(cost.total, "f")`` for a plain decimal string.
    """

    status: str  # "priced" | "local" | "unpriced"
    total: Decimal | None
    input: Decimal | None  # uncached input + cached input + cache writes
    output: Decimal | None  # output, reasoning included
    source: str | None  # the entry that priced it, "local", or None


@final
class Fixed:
    """A result that does not depend on the token counts (local or unpriced), in both read-outs."""

    __slots__ = ("cost", "floats")

    def __init__(self, cost: Cost) -> None:
        self.cost = cost
        self.floats: Floats = (
            cost.status,
            cost.source,
            _float(cost.total),
            _float(cost.input),
            _float(cost.output),
        )


def _float(value: Decimal | None) -> float | None:
    return None if value is None else float(value)


UNPRICED: Final = Fixed(Cost(PRICING_UNPRICED, None, None, None, None))
LOCAL: Final = Fixed(Cost(PRICING_LOCAL, Decimal("0"), Decimal("0"), Decimal("0"), "local"))


@final
class Priced:
    """A price entry compiled for the call path: integer per-token rates, and the formula over them."""

    __slots__ = ("source", "rates", "tiers", "unit", "simple", "audio")

    def __init__(self, source: str, price: Price) -> None:
        tiers = sorted(price.tiers, key=lambda t: t.above_input_tokens, reverse=True)
        prices = [price.input, price.cached_input, price.cache_write, price.output, price.reasoning]
        prices += [price.input_audio, price.output_audio]
        for t in tiers:
            prices += [t.input, t.cached_input, t.cache_write, t.output, t.reasoning]
        # the smallest scale >= 12 at which every per-token rate (price / 10**6) is a whole number
        scale = max([12, *(6 - decimal_parts(d)[1] for d in prices if d is not None)])
        self.source = source
        #: Rate units per picodollar (1 at scale 12: nothing to round).
        self.unit = 10 ** (scale - 12)
        self.rates = _rates(
            scale, price.input, price.cached_input, price.cache_write, price.output, price.reasoning
        )
        #: (above_input_tokens, rates), highest threshold first. A price a tier leaves out is the base one.
        self.tiers = tuple(
            (
                t.above_input_tokens,
                _rates(
                    scale,
                    t.input if t.input is not None else price.input,
                    t.cached_input if t.cached_input is not None else price.cached_input,
                    t.cache_write if t.cache_write is not None else price.cache_write,
                    t.output if t.output is not None else price.output,
                    t.reasoning if t.reasoning is not None else price.reasoning,
                ),
            )
            for t in tiers
        )
        #: No tiers and nothing to round: :meth:`CostCalculator.cost_floats` runs the formula inline.
        self.simple = not self.tiers and self.unit == 1
        #: Per-token audio input / output rates (same scale); None: no audio price.
        self.audio = (
            _per_token(price.input_audio, scale) if price.input_audio is not None else None,
            _per_token(price.output_audio, scale) if price.output_audio is not None else None,
        )

    def pico_audio(
        self,
        input_tokens: int | None,
        output_tokens: int | None,
        cache_read_tokens: int | None,
        cache_write_tokens: int | None,
        reasoning_tokens: int | None,
        audio_input_tokens: int | None,
        audio_output_tokens: int | None,
    ) -> tuple[int, int] | None:
        """:meth:`pico` for a call that reports audio tokens; None when its cost cannot be determined."""
        i = input_tokens if input_tokens and input_tokens > 0 else 0
        o = output_tokens if output_tokens and output_tokens > 0 else 0
        cr = cache_read_tokens if cache_read_tokens and cache_read_tokens > 0 else 0
        cw = cache_write_tokens if cache_write_tokens and cache_write_tokens > 0 else 0
        ai = audio_input_tokens if audio_input_tokens and audio_input_tokens > 0 else 0
        ao = audio_output_tokens if audio_output_tokens and audio_output_tokens > 0 else 0
        r_ain, r_aout = self.audio
        if (ai and (r_ain is None or cr or cw or ai > i)) or (ao and (r_aout is None or ao > o)):
            return None
        rates = self.rates
        for above, tier_rates in self.tiers:  # highest threshold first
            if i > above:
                rates = tier_rates
                break
        r_in, r_cached, r_write, r_out, r_reason = rates
        text_in = i - cr - cw - ai
        inp = (text_in * r_in if text_in > 0 else 0) + cr * r_cached + cw * r_write + ai * (r_ain or 0)
        text_out = o - ao
        if r_reason is not None and reasoning_tokens and reasoning_tokens > 0:
            rt = min(reasoning_tokens, text_out)
            out = (text_out - rt) * r_out + rt * r_reason
        else:
            out = text_out * r_out
        out += ao * (r_aout or 0)
        unit = self.unit
        if unit != 1:
            inp = _round_half_even(inp, unit)
            out = _round_half_even(out, unit)
        return inp, out

    def pico(
        self,
        input_tokens: int | None,
        output_tokens: int | None,
        cache_read_tokens: int | None,
        cache_write_tokens: int | None,
        reasoning_tokens: int | None,
    ) -> tuple[int, int]:
        """``(input, output)`` cost of one call in whole picodollars (1e-12 USD), each rounded half-even."""
        i = input_tokens if input_tokens and input_tokens > 0 else 0
        o = output_tokens if output_tokens and output_tokens > 0 else 0
        cr = cache_read_tokens if cache_read_tokens and cache_read_tokens > 0 else 0
        cw = cache_write_tokens if cache_write_tokens and cache_write_tokens > 0 else 0
        rates = self.rates
        for above, tier_rates in self.tiers:  # highest threshold first
            if i > above:
                rates = tier_rates
                break
        r_in, r_cached, r_write, r_out, r_reason = rates
        uncached = i - cr - cw
        inp = (uncached * r_in if uncached > 0 else 0) + cr * r_cached + cw * r_write
        if r_reason is not None and reasoning_tokens and reasoning_tokens > 0:
            rt = min(reasoning_tokens, o)
            out = (o - rt) * r_out + rt * r_reason
        else:
            out = o * r_out
        unit = self.unit
        if unit != 1:
            inp = _round_half_even(inp, unit)
            out = _round_half_even(out, unit)
        return inp, out


def _rates(
    scale: int,
    inp: Decimal,
    cached: Decimal | None,
    write: Decimal | None,
    out: Decimal | None,
    reason: Decimal | None,
) -> Rates:
    """Per-million prices -> integer per-token rates in 10**-scale USD, with the documented fallbacks."""

    def per_token(d: Decimal) -> int:
        return _per_token(d, scale)

    i = per_token(inp)
    return (
        i,
        per_token(cached) if cached is not None else i,
        per_token(write) if write is not None else i,
        per_token(out) if out is not None else 0,
        per_token(reason) if reason is not None else None,
    )


def _per_token(d: Decimal, scale: int) -> int:
    """A per-million price as an integer per-token rate in 10**-scale USD."""
    coefficient, exponent = decimal_parts(d)
    return coefficient * 10 ** (exponent - 6 + scale)  # the scale makes the shift >= 0


def _round_half_even(amount: int, unit: int) -> int:
    """``amount / unit`` rounded half-even to an integer (``amount`` >= 0)."""
    q, r = divmod(amount, unit)
    if 2 * r > unit or (2 * r == unit and q & 1):
        q += 1
    return q


def _usd(pico: int) -> Decimal:
    """Whole picodollars -> USD with exactly 12 decimal places."""
    return Decimal(pico).scaleb(-12, _CTX)


class CostCalculator:
    """Cost of one call: a bounded memo of resolved entries and the two read-outs of :meth:`Priced.pico`.

    :class:`~llm_otel.pricing.table.PriceTable` subclasses it and supplies :meth:`_resolve` (the name
    lookup). The arithmetic is written into the methods the instrumentors call, rather than in helpers they
    would call, because every extra Python call on the float path costs each LLM call.
    """

    def __init__(self) -> None:
        self._memo: dict[tuple[str, str | None], Priced | Fixed] = {}

    def _resolve(self, provider: str, model: str | None) -> Priced | Fixed:
        """The compiled entry that prices this model, or :data:`LOCAL` / :data:`UNPRICED`."""
        raise NotImplementedError

    def _resolved(self, provider: str, model: str | None) -> Priced | Fixed:
        key = (provider, model)
        hit = self._memo.get(key)
        if hit is None:
            hit = self._resolve(provider, model)
            if len(self._memo) >= _MEMO_MAX:  # an unbounded stream of model names must not grow memory
                self._memo.clear()
            self._memo[key] = hit
        return hit

    def cost(
        self,
        provider: str,
        model: str | None,
        input_tokens: int | None,
        output_tokens: int | None,
        cache_read_tokens: int | None = None,
        cache_write_tokens: int | None = None,
        reasoning_tokens: int | None = None,
        audio_input_tokens: int | None = None,
        audio_output_tokens: int | None = None,
    ) -> Cost:
        """Exact cost of one call. Token semantics are OpenAI's (input includes cache and audio, output
        reasoning and audio)."""
        hit = self._memo.get((provider, model))
        if hit is None:
            hit = self._resolved(provider, model)
        if type(hit) is Fixed:
            return hit.cost  # local (cost 0 whatever the usage) or unpriced
        if input_tokens is None and output_tokens is None:
            return UNPRICED.cost  # usage unknown: no cost rather than a wrong one
        both = _pico_split(
            hit,
            input_tokens,
            output_tokens,
            cache_read_tokens,
            cache_write_tokens,
            reasoning_tokens,
            audio_input_tokens,
            audio_output_tokens,
        )
        if both is None:
            return UNPRICED.cost
        inp, out = both
        return Cost(PRICING_PRICED, _usd(inp + out), _usd(inp), _usd(out), hit.source)

    def unpriced_reason(self, provider: str, model: str | None) -> str:
        """Why a call came out ``unpriced``: ``unknown_model`` (no entry prices it) or ``no_usage`` (it has a
        price, but the call reported no token counts). Asked only for unpriced calls, off the common path."""
        return UNPRICED_UNKNOWN_MODEL if self._resolved(provider, model) is UNPRICED else UNPRICED_NO_USAGE

    def cost_floats(
        self,
        provider: str,
        model: str | None,
        input_tokens: int | None,
        output_tokens: int | None,
        cache_read_tokens: int | None = None,
        cache_write_tokens: int | None = None,
        reasoning_tokens: int | None = None,
        audio_input_tokens: int | None = None,
        audio_output_tokens: int | None = None,
    ) -> Floats:
        """``(status, source, total, input, output)`` for span attributes: :meth:`cost` as floats, cheaply.

        Each float is ``float()`` of the matching :meth:`cost` Decimal, exactly.
        """
        hit = self._memo.get((provider, model))
        if hit is None:
            hit = self._resolved(provider, model)
        if type(hit) is Fixed:
            return hit.floats
        if input_tokens is None and output_tokens is None:
            return UNPRICED.floats
        if audio_input_tokens or audio_output_tokens or not hit.simple:  # rare: the general formula
            both = _pico_split(
                hit,
                input_tokens,
                output_tokens,
                cache_read_tokens,
                cache_write_tokens,
                reasoning_tokens,
                audio_input_tokens,
                audio_output_tokens,
            )
            if both is None:
                return UNPRICED.floats
            inp, out = both
        else:  # Priced.pico inlined, for an entry without tiers and with nothing to round
            i = input_tokens if input_tokens and input_tokens > 0 else 0
            o = output_tokens if output_tokens and output_tokens > 0 else 0
            cr = cache_read_tokens if cache_read_tokens and cache_read_tokens > 0 else 0
            cw = cache_write_tokens if cache_write_tokens and cache_write_tokens > 0 else 0
            r_in, r_cached, r_write, r_out, r_reason = hit.rates
            uncached = i - cr - cw
            inp = (uncached * r_in if uncached > 0 else 0) + cr * r_cached + cw * r_write
            if r_reason is not None and reasoning_tokens and reasoning_tokens > 0:
                rt = min(reasoning_tokens, o)
                out = (o - rt) * r_out + rt * r_reason
            else:
                out = o * r_out
        return PRICING_PRICED, hit.source, (inp + out) / _PICO, inp / _PICO, out / _PICO


def _pico_split(
    hit: Priced,
    input_tokens: int | None,
    output_tokens: int | None,
    cache_read_tokens: int | None,
    cache_write_tokens: int | None,
    reasoning_tokens: int | None,
    audio_input_tokens: int | None,
    audio_output_tokens: int | None,
) -> tuple[int, int] | None:
    """(input, output) picodollars by the entry's general formula: audio tokens at the audio rates when
    the call reports any (None when they cannot be priced), else the text rates."""
    if audio_input_tokens or audio_output_tokens:
        return hit.pico_audio(
            input_tokens,
            output_tokens,
            cache_read_tokens,
            cache_write_tokens,
            reasoning_tokens,
            audio_input_tokens,
            audio_output_tokens,
        )
    return hit.pico(input_tokens, output_tokens, cache_read_tokens, cache_write_tokens, reasoning_tokens)
