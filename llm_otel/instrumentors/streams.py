"""Stream proxies: the user gets the client's own stream object, seen through a wrapt proxy.

The proxy keeps the type (``isinstance(s, openai.Stream)``, generators stay generators), forwards every
attribute (``.response``, ``_iterator``, ...), and ends the call's span exactly once on every exit path:
exhaustion, an error raised by the stream, ``close()``/``aclose()``, leaving a ``with`` block, task
cancellation, and garbage collection of a stream nobody finished (marked ``llm_otel.stream.abandoned``).
State per stream is O(1): the accumulator keeps counters and the last usage, plus text only when content
capture is on. No span event is added per chunk.
"""

from __future__ import annotations

from typing import Any, Protocol

import wrapt

from .. import guard
from .call import GenAICall, Outcome


class Accumulator(Protocol):
    """Reads chunks as they pass. ``add`` returns True for a chunk the user must not see."""

    def add(self, item: Any) -> bool: ...

    def outcome(self) -> Outcome: ...


def _outcome(acc: Accumulator) -> Outcome | None:
    try:
        return acc.outcome()
    except Exception as exc:
        guard.report("stream.outcome", exc)
        return None


def _finish(call: GenAICall, acc: Accumulator, *, abandoned: bool) -> None:
    if not call.ended:
        call.end_ok(_outcome(acc), abandoned=abandoned)


def _fail(call: GenAICall, acc: Accumulator, exc: BaseException) -> None:
    if not call.ended:
        call.end_error(exc, _outcome(acc))


class _ProxyBase(wrapt.ObjectProxy):  # type: ignore[misc]
    def __init__(self, wrapped: Any, call: GenAICall, acc: Accumulator) -> None:
        super().__init__(wrapped)
        self._self_call = call
        self._self_acc = acc

    def _llm_otel_abandon(self) -> None:
        """For helpers (openai's ChatCompletionStream.close) that close the HTTP response directly."""
        _finish(self._self_call, self._self_acc, abandoned=True)

    def __del__(self) -> None:
        try:
            call = self._self_call
        except Exception:  # half-built proxy
            return
        if not call.ended:
            _finish(call, self._self_acc, abandoned=True)


class SyncIteratorProxy(_ProxyBase):
    """A sync iterator (generator or openai ``Stream``)."""

    def __iter__(self) -> SyncIteratorProxy:
        return self

    def __next__(self) -> Any:
        call = self._self_call
        acc = self._self_acc
        while True:
            # Some clients (ollama) send the request on the first pull: make the span current for it,
            # so HTTP child spans nest under the GenAI span. Later pulls skip the context switch.
            token = None if call.first_chunk_ns else call.activate()
            try:
                item = self.__wrapped__.__next__()
            except StopIteration:
                _finish(call, acc, abandoned=False)
                raise
            except BaseException as exc:
                _fail(call, acc, exc)
                raise
            finally:
                if token is not None:
                    call.deactivate(token)
            if not call.first_chunk_ns:
                call.mark_first_chunk()
            call.chunks += 1
            try:
                hidden = acc.add(item)
            except Exception as exc:
                guard.report("stream.chunk", exc)
                hidden = False
            if not hidden:
                return item

    def close(self) -> Any:
        try:
            return self.__wrapped__.close()
        finally:
            _finish(self._self_call, self._self_acc, abandoned=True)


class SyncStreamProxy(SyncIteratorProxy):
    """openai ``Stream``: also a context manager whose ``__enter__`` must return the proxy, not the stream."""

    def __enter__(self) -> SyncStreamProxy:
        self.__wrapped__.__enter__()
        return self

    def __exit__(self, exc_type: Any, exc: Any, tb: Any) -> Any:
        try:
            return self.__wrapped__.__exit__(exc_type, exc, tb)
        finally:
            if exc is not None:
                _fail(self._self_call, self._self_acc, exc)
            else:
                _finish(self._self_call, self._self_acc, abandoned=True)


class AsyncIteratorProxy(_ProxyBase):
    """An async iterator (openai ``AsyncStream``)."""

    def __aiter__(self) -> AsyncIteratorProxy:
        return self

    async def __anext__(self) -> Any:
        call = self._self_call
        acc = self._self_acc
        while True:
            token = None if call.first_chunk_ns else call.activate()
            try:
                item = await self.__wrapped__.__anext__()
            except StopAsyncIteration:
                _finish(call, acc, abandoned=False)
                raise
            except BaseException as exc:
                _fail(call, acc, exc)
                raise
            finally:
                if token is not None:
                    call.deactivate(token)
            if not call.first_chunk_ns:
                call.mark_first_chunk()
            call.chunks += 1
            try:
                hidden = acc.add(item)
            except Exception as exc:
                guard.report("stream.chunk", exc)
                hidden = False
            if not hidden:
                return item


class AsyncStreamProxy(AsyncIteratorProxy):
    """openai ``AsyncStream``: async context manager and ``await close()``."""

    async def close(self) -> Any:
        try:
            return await self.__wrapped__.close()
        finally:
            _finish(self._self_call, self._self_acc, abandoned=True)

    async def __aenter__(self) -> AsyncStreamProxy:
        await self.__wrapped__.__aenter__()
        return self

    async def __aexit__(self, exc_type: Any, exc: Any, tb: Any) -> Any:
        try:
            return await self.__wrapped__.__aexit__(exc_type, exc, tb)
        finally:
            if exc is not None:
                _fail(self._self_call, self._self_acc, exc)
            else:
                _finish(self._self_call, self._self_acc, abandoned=True)


class AsyncGeneratorProxy(AsyncIteratorProxy):
    """An async generator (ollama's ``AsyncClient`` streams): ``aclose()``."""

    async def aclose(self) -> Any:
        try:
            return await self.__wrapped__.aclose()
        finally:
            _finish(self._self_call, self._self_acc, abandoned=True)
