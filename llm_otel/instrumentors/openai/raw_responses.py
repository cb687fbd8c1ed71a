"""Proxies for openai's ``with_raw_response`` / ``with_streaming_response`` results.

The user keeps the raw response API (headers, ``request_id``, ``parse(to=...)``, ``iter_lines()``...). The
span ends when the body is parsed (a parsed stream gets a stream proxy and ends when consumed) or, for a
streamed body the user reads without ``parse()``, when the response is closed.

A proxy knows the call and one ``finish`` callable, bound by the instrumentor to its endpoint: ``finish``
takes the parsed body, ends the span (or hands it to a stream proxy) and returns what the user gets.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import wrapt

from ... import guard

if TYPE_CHECKING:
    from ..call import GenAICall


class _RawBase(wrapt.ObjectProxy):  # type: ignore[misc]
    def __init__(self, wrapped: Any, call: GenAICall, finish: Callable[[Any], Any]) -> None:
        super().__init__(wrapped)
        self._self_call = call
        self._self_finish = finish
        self._self_parsed: dict[int, Any] = {}

    def _after_parse(self, parsed: Any) -> Any:
        """Same parsed object in, same proxy out (openai caches parse results per type)."""
        try:
            known = self._self_parsed.get(id(parsed))
            if known is not None and known.__wrapped__ is parsed:
                return known
            out = self._self_finish(parsed)
            if out is not parsed:
                self._self_parsed[id(parsed)] = out
            return out
        except Exception as exc:
            guard.report("openai.raw_parse", exc)
            return parsed

    def _parse_failed(self, exc: BaseException) -> None:
        self._self_call.end_error(exc)

    def _closed(self, exc: BaseException | None) -> None:
        """``close()`` of a body nobody parsed ends the call; an error closing it is recorded."""
        call = self._self_call
        if not call.ended and not self._self_parsed:
            if exc is None:
                call.end_ok(None)
            else:
                call.end_error(exc)

    def __del__(self) -> None:
        try:
            call = self._self_call
        except Exception:
            return
        if not call.ended:
            call.end_ok(None, abandoned=True)


class LegacyRawStreamProxy(_RawBase):
    """``with_raw_response`` on a streaming call: ``parse()`` returns the (proxied) stream."""

    def parse(self, *args: Any, **kwargs: Any) -> Any:
        try:
            parsed = self.__wrapped__.parse(*args, **kwargs)
        except BaseException as exc:
            self._parse_failed(exc)
            raise
        return self._after_parse(parsed)


class RawResponseProxy(LegacyRawStreamProxy):
    """``with_streaming_response`` (sync): the body is read lazily; ``close()`` ends an unparsed call."""

    def close(self) -> Any:
        try:
            result = self.__wrapped__.close()
        except BaseException as exc:
            self._closed(exc)
            raise
        self._closed(None)
        return result


class AsyncRawResponseProxy(_RawBase):
    """``with_streaming_response`` (async): ``parse()`` and ``close()`` are coroutines."""

    async def parse(self, *args: Any, **kwargs: Any) -> Any:
        try:
            parsed = await self.__wrapped__.parse(*args, **kwargs)
        except BaseException as exc:
            self._parse_failed(exc)
            raise
        return self._after_parse(parsed)

    async def close(self) -> Any:
        try:
            result = await self.__wrapped__.close()
        except BaseException as exc:
            self._closed(exc)
            raise
        self._closed(None)
        return result
