"""Ollama instrumentor: one GenAI span per chat / generate / embed / embeddings call of the ``ollama`` client.

Patched in one place per client class: ``ollama._client.Client._request`` and ``AsyncClient._request``.
Every public method builds its JSON body and calls ``self._request(cls, method, path, json=..., stream=...)``,
looked up on the class at call time, so the module-level helpers (``ollama.chat`` etc., bound methods of a
default client made at import) are traced too, even when bound with ``from ollama import chat`` before
``instrument()`` ran; ``uninstrument()`` puts the original ``_request`` back and they stop being traced.
The path picks the operation (``/api/chat`` chat, ``/api/generate`` text_completion, ``/api/embed`` and
``/api/embeddings`` embeddings); every other path (pull, list, show, web_search, ...) passes straight
through. Streams (a generator, or an async generator for ``AsyncClient``) are handed back behind a proxy
that ends the span on every way out.

Holds the wrappers and :class:`OllamaInstrumentor`; what is read from a request body and a response lives
in ``request.py`` / ``response.py`` beside it.

Supported: ollama 0.4.0 (the first release whose methods go through ``_request(cls, ...)`` and return
pydantic models; 0.3.x returned plain dicts from a different internal API) through 0.6.3, both ends
tested; the requirement BaseInstrumentor checks is ``_instruments`` below. Old releases raise
``httpx.ConnectError`` for a refused connection where current ones raise the builtin ``ConnectionError``
(and streams raise ``httpx.ConnectError`` on every version); ``error.type`` records whichever the user
gets.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable, Collection
from types import ModuleType
from typing import Any

from opentelemetry.instrumentation.instrumentor import BaseInstrumentor  # type: ignore[attr-defined]
from opentelemetry.instrumentation.utils import is_instrumentation_enabled

from ... import guard
from ... import semconv as sc
from ...content import truncate
from .. import content_capture as cc
from ..call import GenAICall, Telemetry
from ..lazy import LazyPatcher
from ..server import server_and_provider
from ..streams import AsyncGeneratorProxy, SyncIteratorProxy
from ..tracer import telemetry_from_kwargs
from . import request as req
from . import response as resp

logger = logging.getLogger("llm_otel")

#: The ollama versions this instrumentor supports, as ``instrumentation_dependencies()`` reports them.
_instruments = ("ollama >= 0.4",)

_MODULE = "ollama._client"
_CLASSES = (("Client", False), ("AsyncClient", True))
#: request path -> GenAI operation; anything else is not an inference call and is not traced.
ROUTES: dict[str, str] = {
    "/api/chat": sc.OP_CHAT,
    "/api/generate": sc.OP_TEXT_COMPLETION,
    "/api/embed": sc.OP_EMBEDDINGS,
    "/api/embeddings": sc.OP_EMBEDDINGS,
}


def _path(args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
    """``_request(cls, method, path, ...)``: the path is the third positional argument (or ``url=``)."""
    return args[2] if len(args) > 2 else kwargs.get("url")


class _Wrapping:
    """Builds the two ``_request`` wrappers; all per-call logic lives here."""

    def __init__(self, telemetry: Telemetry) -> None:
        self.t = telemetry
        #: False after this instrumentor's uninstrument(): a wrapper someone captured before then passes
        #: straight through.
        self.enabled = True

    def start(self, instance: Any, operation: str, kwargs: dict[str, Any]) -> GenAICall:
        t = self.t
        body = kwargs.get("json")
        if not isinstance(body, dict):
            body = {}
        _, attrs = server_and_provider(instance, t, ())
        model = req.request_attributes(body, attrs)
        if kwargs.get("stream"):  # what _request returns depends on this flag, not on the body
            attrs[sc.REQUEST_STREAM] = True
        call = GenAICall(t, operation, sc.PROVIDER_OLLAMA, model, attrs)
        if t.capture.enabled:
            self.capture_input(call, operation, body)
        return call

    def capture_input(self, call: GenAICall, operation: str, body: dict[str, Any]) -> None:
        try:
            limit = self.t.max_chars
            if operation == sc.OP_CHAT:
                tools = cc.tool_definitions(body.get("tools"), None, limit)
                call.record_input(cc.chat_messages(body.get("messages"), limit), None, tools)
            elif operation == sc.OP_TEXT_COMPLETION:
                system = body.get("system")
                instructions = (
                    [{"type": "text", "content": truncate(system, limit)}]
                    if isinstance(system, str) and system
                    else None
                )
                call.record_input(cc.prompt_messages(body.get("prompt"), limit), instructions)
        except Exception as exc:
            guard.report("ollama.capture_input", exc)

    def finish(self, call: GenAICall, operation: str, result: Any, stream: Any, is_async: bool) -> Any:
        """End the span (or hand it to a stream proxy) and return what the user gets."""
        t = self.t
        try:
            if stream:
                acc = resp.OllamaChunks(operation, t.capture.enabled, t.max_chars)
                return (
                    AsyncGeneratorProxy(result, call, acc)
                    if is_async
                    else SyncIteratorProxy(result, call, acc)
                )
            call.end_ok(resp.outcome(result, operation, t.capture.enabled, t.max_chars))
        except Exception as exc:
            guard.report("ollama.finish", exc)
            call.end_ok(None)
        return result

    def _begin(
        self, instance: Any, args: tuple[Any, ...], kwargs: dict[str, Any]
    ) -> tuple[GenAICall, str] | None:
        """The call's span and operation, or None for a path that is not traced (or on our own failure)."""
        try:
            operation = ROUTES.get(_path(args, kwargs))
            if operation is None:
                return None
            return self.start(instance, operation, kwargs), operation
        except Exception as exc:
            guard.report("ollama.start", exc)
            return None

    def make(self, is_async: bool) -> Callable[..., Any]:
        if is_async:

            async def async_wrapper(wrapped: Any, instance: Any, args: Any, kwargs: Any) -> Any:
                if not self.enabled or not is_instrumentation_enabled():
                    return await wrapped(*args, **kwargs)
                begun = self._begin(instance, args, kwargs)
                if begun is None:
                    return await wrapped(*args, **kwargs)
                call, operation = begun
                token = call.activate()
                try:
                    result = await wrapped(*args, **kwargs)
                except BaseException as exc:
                    call.end_error(exc)
                    raise
                finally:
                    call.deactivate(token)
                return self.finish(call, operation, result, kwargs.get("stream"), True)

            return async_wrapper

        def wrapper(wrapped: Any, instance: Any, args: Any, kwargs: Any) -> Any:
            if not self.enabled or not is_instrumentation_enabled():
                return wrapped(*args, **kwargs)
            begun = self._begin(instance, args, kwargs)
            if begun is None:
                return wrapped(*args, **kwargs)
            call, operation = begun
            token = call.activate()
            try:
                result = wrapped(*args, **kwargs)
            except BaseException as exc:
                call.end_error(exc)
                raise
            finally:
                call.deactivate(token)
            return self.finish(call, operation, result, kwargs.get("stream"), False)

        return wrapper


class OllamaInstrumentor(BaseInstrumentor):  # type: ignore[misc]
    """GenAI spans for the ``ollama`` client. Usually enabled by ``llm_otel.instrument()``.

    Does not import ollama: ``_request`` is wrapped when the application imports it (``lazy.py``).
    """

    # BaseInstrumentor is a singleton whose __init__ runs on every OllamaInstrumentor() call: state is
    # set in _instrument only, so a later uninstrument() still finds it.
    _wrapping: _Wrapping | None = None
    _patcher: LazyPatcher | None = None

    def instrumentation_dependencies(self) -> Collection[str]:
        return _instruments

    def _instrument(self, **kwargs: Any) -> None:
        try:
            telemetry = telemetry_from_kwargs(kwargs, self, "ollama")
        except LookupError:
            logger.info("llm-otel: ollama is not in LLM_OTEL_INSTRUMENTORS; not instrumenting it")
            return
        self._wrapping = wrapping = _Wrapping(telemetry)
        self._patcher = patcher = LazyPatcher("ollama")
        # ``ollama._client``, not ``ollama``: the package's own ``_client`` attribute is its default Client()
        patcher.when_imported(_MODULE, functools.partial(_patch_client, wrapping, patcher))

    def _uninstrument(self, **kwargs: Any) -> None:
        if self._wrapping is not None:
            self._wrapping.enabled = False  # a wrapper someone captured now passes straight through
            self._wrapping = None
        if self._patcher is not None:
            self._patcher.stop()  # puts the original _request back, or cancels the wait for the import
            self._patcher = None


def _patch_client(wrapping: _Wrapping, patcher: LazyPatcher, client_module: ModuleType) -> None:
    """``ollama._client`` is imported (by the application): wrap both clients' ``_request``."""
    for cls_name, is_async in _CLASSES:
        if not patcher.wrap(client_module, f"{cls_name}._request", wrapping.make(is_async)):
            logger.warning(
                "llm-otel: ollama.%s._request not found; %s calls are not traced", cls_name, cls_name
            )
