"""Stream proxies: the user gets the client's own stream object, seen through a wrapt proxy.

The proxy keeps the type (``isinstance(s, openai.Stream)``, generators stay generators), forwards every
attribute (``.response``, ``_iterator``, ...), and ends the call's span exactly once on every exit path:
exhaustion, an error raised by the stream, ``close()``/``aclose()`` (an error it raises is recorded and
re-raised), leaving a ``with`` block, task cancellation, and garbage collection of a stream nobody finished
(marked ``llm_otel.stream.abandoned``). A stream that is exhausted without its final chunk (a server that
cut it off after sending 200) ends as failed, ``error.type`` ``llm_otel.stream.incomplete``; the caller
still gets exactly what the client gives. State per stream is O(1): the accumulator keeps counters and
the last usage, plus text only when content capture is on; the call keeps the chunk count and the first
and last chunk times. No span event is added per chunk.

Per chunk this is the hot path of a stream: iterating an openai ``Stream`` with ``for`` goes through a
generator (``SyncStreamProxy.__iter__``, like ``Stream.__iter__`` itself), whose locals hold what the
loop needs, instead of a Python ``__next__`` reached through the proxy on every chunk.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any, Protocol

import wrapt

from .. import guard
from .call import GenAICall, Outcome


class Accumulator(Protocol):
    """Reads chunks as they pass. ``add`` returns True for a chunk the user must not see."""

    def add(self, item: Any) -> bool: ...

    def outcome(self) -> Outcome: ...

    def complete(self) -> bool:
        """Whether the stream delivered its final chunk (every choice finished, the terminal event)."""
        ...


_now = time.monotonic_ns


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


def _exhausted(call: GenAICall, acc: Accumulator) -> None:
    """The client's iterator ended normally: a success, unless the final chunk never came."""
    if call.ended:
        return
    try:
        complete = acc.complete()
    except Exception as exc:
        guard.report("stream.complete", exc)
        complete = True
    if complete:
        call.end_ok(_outcome(acc))
    else:
        call.end_incomplete(_outcome(acc))


def _closed(call: GenAICall, acc: Accumulator, exc: BaseException | None) -> None:
    """After ``close()``/``aclose()``/``__exit__``: abandoned, or failed with what closing raised."""
    if call.ended:
        return
    if exc is None:
        call.end_ok(_outcome(acc), abandoned=True)
    else:
        call.end_error(exc, _outcome(acc))


class _ProxyBase(wrapt.ObjectProxy):  # type: ignore[misc]
    def __init__(self, wrapped: Any, call: GenAICall, acc: Accumulator) -> None:
        super().__init__(wrapped)
        self._self_call = call
        self._self_acc = acc

    def _llm_otel_abandon(self, exc: BaseException | None = None) -> None:
        """For helpers (openai's ChatCompletionStream.close) that close the HTTP response directly;
        ``exc``: what their close raised."""
        _closed(self._self_call, self._self_acc, exc)

    def __del__(self) -> None:
        try:
            call = self._self_call
        except Exception:  # half-built proxy
            return
        if not call.ended:
            _finish(call, self._self_acc, abandoned=True)


class SyncIteratorProxy(_ProxyBase):
    """A sync iterator (an ollama generator; an openai ``Stream`` pulled with ``next()``)."""

    def __iter__(self) -> Iterator[Any]:
        return self

    def __next__(self) -> Any:
        call = self._self_call
        acc = self._self_acc
        wrapped = self.__wrapped__
        while True:
            # Some clients (ollama) send the request on the first pull: make the span current for it,
            # so HTTP child spans nest under the GenAI span. Later pulls skip the context switch.
            if call.first_chunk_ns:
                try:
                    item = wrapped.__next__()
                except StopIteration:
                    _exhausted(call, acc)
                    raise
                except BaseException as exc:
                    _fail(call, acc, exc)
                    raise
                now = _now()
            else:
                token = call.activate()
                try:
                    item = wrapped.__next__()
                except StopIteration:
                    _exhausted(call, acc)
                    raise
                except BaseException as exc:
                    _fail(call, acc, exc)
                    raise
                finally:
                    call.deactivate(token)
                now = call.first_chunk_ns = _now()
            call.last_chunk_ns = now
            call.chunks += 1
            try:
                if not acc.add(item):
                    return item
            except Exception as exc:
                guard.report("stream.chunk", exc)
                return item

    def close(self) -> Any:
        try:
            result = self.__wrapped__.close()
        except BaseException as exc:
            _closed(self._self_call, self._self_acc, exc)
            raise
        _closed(self._self_call, self._self_acc, None)
        return result


def _stream_chunks(proxy: SyncStreamProxy, call: GenAICall, acc: Accumulator) -> Iterator[Any]:
    """``for chunk in stream``: the chunks of the client's own iterator, counted, timed and read.

    Breaking out of the loop closes this generator (GeneratorExit at the ``yield``): the span stays open
    until the stream is closed, left or collected, as with ``next()``."""
    add = acc.add
    now = _now
    first = not call.first_chunk_ns
    try:
        for item in proxy.__wrapped__:
            t = now()
            if first:
                call.first_chunk_ns = t
                first = False
            call.last_chunk_ns = t
            call.chunks += 1
            try:
                if add(item):
                    continue
            except Exception as exc:
                guard.report("stream.chunk", exc)
            yield item
    except GeneratorExit:
        raise
    except BaseException as exc:
        _fail(call, acc, exc)
        raise
    _exhausted(call, acc)


def _chat_stream_chunks(proxy: SyncStreamProxy, call: GenAICall, acc: Any) -> Iterator[Any]:
    """:func:`_stream_chunks` for a Chat Completions stream without content capture (``ChatChunks``):
    the common chunk (one choice, index 0 already seen, no finish reason, no usage) is recognised here,
    from the client model's ``__dict__``, without a call; every other chunk goes to ``ChatChunks.add``
    (streams with content capture on take the general path)."""
    slow = acc.add
    now = _now
    first = not call.first_chunk_ns
    try:
        for item in proxy.__wrapped__:
            t = now()
            if first:
                call.first_chunk_ns = t
                first = False
            call.last_chunk_ns = t
            call.chunks += 1
            try:
                fields = item.__dict__
                if fields["usage"] is None:
                    choices = fields["choices"]
                    if len(choices) == 1:
                        choice = choices[0].__dict__
                        if choice["finish_reason"] is None and choice["index"] == 0 and acc.seen:
                            acc.last = item
                            yield item
                            continue
            except Exception:  # not a client model, or an odd one: the general path reads it
                pass
            try:
                if slow(item):
                    continue
            except Exception as exc:
                guard.report("stream.chunk", exc)
            yield item
    except GeneratorExit:
        raise
    except BaseException as exc:
        _fail(call, acc, exc)
        raise
    _exhausted(call, acc)


class SyncStreamProxy(SyncIteratorProxy):
    """openai ``Stream``: iterated through a generator (as ``Stream.__iter__`` is); also a context manager
    whose ``__enter__`` must return the proxy, not the stream."""

    def __iter__(self) -> Iterator[Any]:
        acc = self._self_acc
        if getattr(acc, "common_chunk_inline", False):
            return _chat_stream_chunks(self, self._self_call, acc)
        return _stream_chunks(self, self._self_call, acc)

    def __enter__(self) -> SyncStreamProxy:
        self.__wrapped__.__enter__()
        return self

    def __exit__(self, exc_type: Any, exc: Any, tb: Any) -> Any:
        try:
            result = self.__wrapped__.__exit__(exc_type, exc, tb)
        except BaseException as raised:
            _closed(self._self_call, self._self_acc, raised)
            raise
        _closed(self._self_call, self._self_acc, exc)
        return result


class AsyncIteratorProxy(_ProxyBase):
    """An async iterator (openai ``AsyncStream``)."""

    def __aiter__(self) -> AsyncIteratorProxy:
        return self

    async def __anext__(self) -> Any:
        call = self._self_call
        acc = self._self_acc
        wrapped = self.__wrapped__
        while True:
            token = None if call.first_chunk_ns else call.activate()
            try:
                item = await wrapped.__anext__()
            except StopAsyncIteration:
                _exhausted(call, acc)
                raise
            except BaseException as exc:
                _fail(call, acc, exc)
                raise
            finally:
                if token is not None:
                    call.deactivate(token)
            now = _now()
            if not call.first_chunk_ns:
                call.first_chunk_ns = now
            call.last_chunk_ns = now
            call.chunks += 1
            try:
                if not acc.add(item):
                    return item
            except Exception as exc:
                guard.report("stream.chunk", exc)
                return item


class AsyncStreamProxy(AsyncIteratorProxy):
    """openai ``AsyncStream``: async context manager and ``await close()``."""

    async def close(self) -> Any:
        try:
            result = await self.__wrapped__.close()
        except BaseException as exc:
            _closed(self._self_call, self._self_acc, exc)
            raise
        _closed(self._self_call, self._self_acc, None)
        return result

    async def __aenter__(self) -> AsyncStreamProxy:
        await self.__wrapped__.__aenter__()
        return self

    async def __aexit__(self, exc_type: Any, exc: Any, tb: Any) -> Any:
        try:
            result = await self.__wrapped__.__aexit__(exc_type, exc, tb)
        except BaseException as raised:
            _closed(self._self_call, self._self_acc, raised)
            raise
        _closed(self._self_call, self._self_acc, exc)
        return result


class AsyncGeneratorProxy(AsyncIteratorProxy):
    """An async generator (ollama's ``AsyncClient`` streams): ``aclose()``."""

    async def aclose(self) -> Any:
        try:
            result = await self.__wrapped__.aclose()
        except BaseException as exc:
            _closed(self._self_call, self._self_acc, exc)
            raise
        _closed(self._self_call, self._self_acc, None)
        return result
