"""OpenAI instrumentor: one GenAI span per call of the ``openai`` client (sync, async, streaming, raw).

Patched with wrapt on the resource classes, each when the application imports its module (never before),
so every client instance (``OpenAI``, ``AsyncOpenAI``,
``AzureOpenAI``, ...) is covered: chat.completions.create/parse (+ the beta parse where present, and the
``chat.completions.stream()`` helper through create), responses.create/parse (+ ``responses.stream()``),
responses.retrieve (``fetch_response``, also the stream resume ``responses.stream(response_id=...)``),
embeddings.create and the legacy completions.create. ``with_raw_response``/``with_streaming_response``
keep their API: the span ends when the body is parsed or the response closed (``raw_responses.py``).

Holds the endpoint table, the per-call wrappers and :class:`OpenAIInstrumentor`; what is read from a
request and a response lives in ``request.py`` / ``response.py`` beside it.

Supported: openai 1.55 (the first 1.x that works with httpx 0.28) through 3.x (httpx2). The requirement
BaseInstrumentor checks is ``_instruments`` below.
"""

from __future__ import annotations

import contextvars
import functools
import logging
from collections.abc import Callable, Collection
from dataclasses import dataclass
from types import ModuleType
from typing import Any

from opentelemetry.instrumentation.instrumentor import BaseInstrumentor  # type: ignore[attr-defined]
from opentelemetry.instrumentation.utils import is_instrumentation_enabled

from ... import guard
from ... import semconv as sc
from .. import content_capture as cc
from ..call import GenAICall, Outcome, Telemetry
from ..lazy import LazyPatcher
from ..server import server_and_provider
from ..streams import AsyncStreamProxy, SyncStreamProxy
from ..tracer import telemetry_from_kwargs
from . import request as req
from . import response as resp
from .raw_responses import AsyncRawResponseProxy, LegacyRawStreamProxy, RawResponseProxy

logger = logging.getLogger("llm_otel")

#: The openai versions this instrumentor supports, as ``instrumentation_dependencies()`` reports them.
_instruments = ("openai >= 1.55",)

#: Set while a wrapped OpenAI method runs, so a wrapped method called by another one adds no second span.
_IN_CALL: contextvars.ContextVar[bool] = contextvars.ContextVar("llm_otel_openai_in_call", default=False)


@dataclass(frozen=True)
class _Endpoint:
    module: str
    method: str  # "Class.method"
    operation: str
    request: Callable[[dict[str, Any], dict[str, Any]], str | None]
    outcome: Callable[..., Outcome]
    stream: str | None  # "chat" | "completion" | "responses" | None
    is_async: bool


def _pair(module: str, cls: str, method: str, *rest: Any) -> list[_Endpoint]:
    """The sync and async variants of one endpoint."""
    return [
        _Endpoint(module, f"{cls}.{method}", *rest, False),  # type: ignore[call-arg]
        _Endpoint(module, f"Async{cls}.{method}", *rest, True),  # type: ignore[call-arg]
    ]


_CHAT = ("chat", req.chat_request, resp.chat_outcome)
ENDPOINTS: list[_Endpoint] = [
    *_pair("openai.resources.chat.completions", "Completions", "create", *_CHAT, "chat"),
    *_pair("openai.resources.chat.completions", "Completions", "parse", *_CHAT, None),
    *_pair("openai.resources.beta.chat.completions", "Completions", "parse", *_CHAT, None),
    *_pair(
        "openai.resources.responses",
        "Responses",
        "create",
        "chat",
        req.responses_request,
        resp.responses_outcome,
        "responses",
    ),
    *_pair(
        "openai.resources.responses",
        "Responses",
        "parse",
        "chat",
        req.responses_request,
        resp.responses_outcome,
        None,
    ),
    *_pair(
        "openai.resources.responses",
        "Responses",
        "retrieve",
        sc.OP_FETCH_RESPONSE,
        req.fetch_request,
        resp.fetch_outcome,
        "responses",
    ),
    *_pair(
        "openai.resources.embeddings",
        "Embeddings",
        "create",
        "embeddings",
        req.embeddings_request,
        resp.embeddings_outcome,
        None,
    ),
    *_pair(
        "openai.resources.completions",
        "Completions",
        "create",
        "text_completion",
        req.completions_request,
        resp.completion_outcome,
        "completion",
    ),
]

#: Stream helpers that close the HTTP response directly, bypassing the stream they iterate (our proxy).
HELPER_CLOSES = [
    ("openai.lib.streaming.chat._completions", "ChatCompletionStream.close", False),
    ("openai.lib.streaming.chat._completions", "AsyncChatCompletionStream.close", True),
    ("openai.lib.streaming.responses._responses", "ResponseStream.close", False),
    ("openai.lib.streaming.responses._responses", "AsyncResponseStream.close", True),
]


class _ClientTypes:
    """openai classes looked up once, when openai is imported (names moved little across 1.x-3.x)."""

    def __init__(self) -> None:
        import openai

        self.azure: tuple[type, ...] = tuple(
            t for t in (getattr(openai, "AzureOpenAI", None), getattr(openai, "AsyncAzureOpenAI", None)) if t
        )
        self.stream: type[Any] = openai.Stream
        self.async_stream: type[Any] = openai.AsyncStream
        from openai._legacy_response import LegacyAPIResponse
        from openai._response import APIResponse, AsyncAPIResponse

        self.legacy_raw: type[Any] = LegacyAPIResponse
        self.api_response: type[Any] = APIResponse
        self.async_api_response: type[Any] = AsyncAPIResponse


#: What a wrapped method returned: a parsed response, a stream, a raw (``with_raw_response``) response.
_PARSED, _STREAM, _RAW = 0, 1, 2


class _Wrapping:
    """Builds the wrapt wrapper for one endpoint; all per-call logic lives here."""

    #: looked up when ``openai`` is imported, before any of its methods is wrapped
    types: _ClientTypes

    def __init__(self, telemetry: Telemetry) -> None:
        self.t = telemetry
        #: False after this instrumentor's uninstrument(): wrappers captured inside client objects (e.g.
        #: openai's cached with_raw_response) then pass straight through.
        self.enabled = True
        #: result class -> _PARSED / _STREAM / _RAW (see kind_of)
        self.kinds: dict[type, int] = {}

    # -- call start ------------------------------------------------------------------------------------
    def start(
        self, ep: _Endpoint, instance: Any, args: tuple[Any, ...], kwargs: dict[str, Any]
    ) -> tuple[GenAICall, dict[str, Any], bool]:
        t = self.t
        provider, attrs = server_and_provider(instance, t, self.types.azure)
        if args and ep.operation == sc.OP_FETCH_RESPONSE:  # retrieve(response_id, ...)
            model = ep.request({**kwargs, "response_id": args[0]}, attrs)
        else:
            model = ep.request(kwargs, attrs)
        hide_usage = False
        call_kwargs = kwargs
        if (
            ep.stream in ("chat", "completion")
            and kwargs.get("stream") is True
            and t.inject_stream_usage
            and req.wants_stream_usage(kwargs)
        ):
            call_kwargs = req.inject_stream_usage(kwargs)
            hide_usage = True
        call = GenAICall(t, ep.operation, provider, model, attrs)
        if t.capture.enabled:
            self.capture_input(call, ep, kwargs)
        return call, call_kwargs, hide_usage

    def capture_input(self, call: GenAICall, ep: _Endpoint, kwargs: dict[str, Any]) -> None:
        try:
            limit = self.t.max_chars
            if ep.request is req.responses_request:
                messages, system = cc.responses_input(kwargs, limit)
                call.record_input(messages, system, cc.tool_definitions(kwargs.get("tools"), None, limit))
            elif ep.operation == sc.OP_TEXT_COMPLETION:
                call.record_input(cc.prompt_messages(kwargs.get("prompt"), limit))
            elif ep.operation == sc.OP_CHAT:
                tools = cc.tool_definitions(kwargs.get("tools"), kwargs.get("functions"), limit)
                call.record_input(cc.chat_messages(kwargs.get("messages"), limit), None, tools)
        except Exception as exc:
            guard.report("openai.capture_input", exc)

    # -- call end --------------------------------------------------------------------------------------
    def accumulator(self, ep: _Endpoint, hide_usage: bool) -> Any:
        t = self.t
        capture = t.capture.enabled
        if ep.stream == "responses":
            events = resp.FetchEvents if ep.operation == sc.OP_FETCH_RESPONSE else resp.ResponseEvents
            return events(capture, t.max_chars)
        return resp.ChatChunks(hide_usage, capture, t.max_chars, "delta" if ep.stream == "chat" else "text")

    def finish(self, ep: _Endpoint, call: GenAICall, result: Any, hide_usage: bool) -> Any:
        """End the span (or hand it to a proxy) and return what the user gets."""
        try:
            kind = self.kinds.get(result.__class__)
            if kind is None:
                kind = self.kind_of(result.__class__)
            if kind == _STREAM:
                proxy_cls = AsyncStreamProxy if ep.is_async else SyncStreamProxy
                return proxy_cls(result, call, self.accumulator(ep, hide_usage))
            if kind == _RAW:
                return self.finish_raw(ep, call, result, hide_usage)
            call.end_ok(ep.outcome(result, self.t.capture.enabled, self.t.max_chars))
        except Exception as exc:
            guard.report("openai.finish", exc)
            call.end_ok(None)
        return result

    def kind_of(self, cls: type) -> int:
        """What a result of class ``cls`` is (a stream, a raw response or a parsed one), remembered per
        class: two ``isinstance`` checks against tuples of openai classes, once per class."""
        types = self.types
        if issubclass(cls, (types.stream, types.async_stream)):
            kind = _STREAM
        elif issubclass(cls, (types.legacy_raw, types.api_response, types.async_api_response)):
            kind = _RAW
        else:
            kind = _PARSED
        if len(self.kinds) >= 256:
            self.kinds.clear()
        self.kinds[cls] = kind
        return kind

    def finish_raw(self, ep: _Endpoint, call: GenAICall, raw: Any, hide_usage: bool) -> Any:
        proxy_cls: type[Any]
        if isinstance(raw, self.types.legacy_raw):
            if not ep.stream or not getattr(raw, "_stream", False):
                # Body already read: parse now (openai caches it, the user's parse() returns the same object).
                try:
                    parsed = raw.parse()
                except Exception as exc:  # the user's own parse() will raise the same
                    call.end_error(exc)
                    return raw
                call.end_ok(ep.outcome(parsed, self.t.capture.enabled, self.t.max_chars))
                return raw
            proxy_cls = LegacyRawStreamProxy
        elif isinstance(raw, self.types.async_api_response):
            proxy_cls = AsyncRawResponseProxy
        else:
            proxy_cls = RawResponseProxy
        # the proxy ends the span through finish() once the user parses the body
        return proxy_cls(raw, call, functools.partial(self.finish, ep, call, hide_usage=hide_usage))

    # -- wrappers --------------------------------------------------------------------------------------
    def make(self, ep: _Endpoint) -> Callable[..., Any]:
        if ep.is_async:

            async def async_wrapper(wrapped: Any, instance: Any, args: Any, kwargs: Any) -> Any:
                if not self.enabled or _IN_CALL.get() or not is_instrumentation_enabled():
                    return await wrapped(*args, **kwargs)
                try:
                    call, call_kwargs, hide_usage = self.start(ep, instance, args, kwargs)
                except Exception as exc:
                    guard.report("openai.start", exc)
                    return await wrapped(*args, **kwargs)
                token = call.activate()
                mark = _IN_CALL.set(True)
                try:
                    result = await wrapped(*args, **call_kwargs)
                except BaseException as exc:
                    call.end_error(exc)
                    raise
                finally:
                    _IN_CALL.reset(mark)
                    call.deactivate(token)
                return self.finish(ep, call, result, hide_usage)

            return async_wrapper

        def wrapper(wrapped: Any, instance: Any, args: Any, kwargs: Any) -> Any:
            if not self.enabled or _IN_CALL.get() or not is_instrumentation_enabled():
                return wrapped(*args, **kwargs)
            try:
                call, call_kwargs, hide_usage = self.start(ep, instance, args, kwargs)
            except Exception as exc:
                guard.report("openai.start", exc)
                return wrapped(*args, **kwargs)
            token = call.activate()
            mark = _IN_CALL.set(True)
            try:
                result = wrapped(*args, **call_kwargs)
            except BaseException as exc:
                call.end_error(exc)
                raise
            finally:
                _IN_CALL.reset(mark)
                call.deactivate(token)
            return self.finish(ep, call, result, hide_usage)

        return wrapper


def _helper_close_wrapper(is_async: bool) -> Callable[..., Any]:
    def _abandon(instance: Any, exc: BaseException | None = None) -> None:
        try:
            abandon = getattr(getattr(instance, "_raw_stream", None), "_llm_otel_abandon", None)
            if abandon is not None:
                abandon(exc)
        except Exception as inner:
            guard.report("openai.helper_close", inner)

    if is_async:

        async def async_close(wrapped: Any, instance: Any, args: Any, kwargs: Any) -> Any:
            try:
                result = await wrapped(*args, **kwargs)
            except BaseException as exc:  # recorded on the span, then the caller gets it
                _abandon(instance, exc)
                raise
            _abandon(instance)
            return result

        return async_close

    def close(wrapped: Any, instance: Any, args: Any, kwargs: Any) -> Any:
        try:
            result = wrapped(*args, **kwargs)
        except BaseException as exc:  # recorded on the span, then the caller gets it
            _abandon(instance, exc)
            raise
        _abandon(instance)
        return result

    return close


#: module -> what to wrap in it when the application imports it: (method, endpoint or helper-close is_async)
_TARGETS: dict[str, list[tuple[str, _Endpoint | bool]]] = {}
for _ep in ENDPOINTS:
    _TARGETS.setdefault(_ep.module, []).append((_ep.method, _ep))
for _module, _method, _is_async in HELPER_CLOSES:
    _TARGETS.setdefault(_module, []).append((_method, _is_async))


def _on_openai(wrapping: _Wrapping, patcher: LazyPatcher, module: ModuleType) -> None:
    """``openai`` is imported: look up its classes, then patch each target module as it gets imported
    (several, such as the Responses streaming helpers, load only when the application first uses them)."""
    wrapping.types = _ClientTypes()
    for name in _TARGETS:
        patcher.when_imported(name, functools.partial(_patch_module, wrapping, patcher))


def _patch_module(wrapping: _Wrapping, patcher: LazyPatcher, module: ModuleType) -> None:
    for method, target in _TARGETS.get(module.__name__, ()):
        if isinstance(target, _Endpoint):
            patcher.wrap(module, method, wrapping.make(target))
        else:
            patcher.wrap(module, method, _helper_close_wrapper(target))


class OpenAIInstrumentor(BaseInstrumentor):  # type: ignore[misc]
    """GenAI spans for the ``openai`` client. Usually enabled by ``llm_otel.instrument()``.

    Nothing of openai is imported here: each module is patched when the application imports it
    (``lazy.py``), so ``instrument()`` costs no more when the application never uses a part of openai.
    """

    # BaseInstrumentor is a singleton whose __init__ runs on every OpenAIInstrumentor() call: state is
    # set in _instrument only, never reset by a constructor call while instrumented.
    _wrapping: _Wrapping | None = None
    _patcher: LazyPatcher | None = None

    def instrumentation_dependencies(self) -> Collection[str]:
        return _instruments

    def _instrument(self, **kwargs: Any) -> None:
        try:
            telemetry = telemetry_from_kwargs(kwargs, self, "openai")
        except LookupError:
            logger.info("llm-otel: openai is not in LLM_OTEL_INSTRUMENTORS; not instrumenting it")
            return
        self._wrapping = wrapping = _Wrapping(telemetry)
        self._patcher = patcher = LazyPatcher("openai")
        patcher.when_imported("openai", functools.partial(_on_openai, wrapping, patcher))

    def _uninstrument(self, **kwargs: Any) -> None:
        if self._wrapping is not None:
            self._wrapping.enabled = False  # wrappers captured inside client objects now pass through
            self._wrapping = None
        if self._patcher is not None:
            self._patcher.stop()  # restores every patched method, cancels what waits for an import
            self._patcher = None
