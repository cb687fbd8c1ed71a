"""Patch a client library's modules when the application imports them, never before.

``instrument()`` must not import ``ollama`` when the application never does, nor openai's lazily-loaded
modules (the Responses streaming helpers, ...) only to patch them: importing those costs more than all the
rest of llm-otel's start-up. A :class:`LazyPatcher` runs a callback for a module at once when the module is
already imported, else from a wrapt post-import hook the moment it is. ``stop()`` undoes every patch and
cancels the callbacks that have not run yet.

wrapt cannot unregister a hook, so there is one hook per module name for the whole process; it hands the
module to whatever callbacks are waiting for it at that moment (a cancelled callback is no longer there).
A callback's failure is contained and reported: it never breaks the application's ``import``.
"""

from __future__ import annotations

import sys
import threading
from collections.abc import Callable
from types import ModuleType
from typing import Any

from opentelemetry.instrumentation.utils import unwrap
from wrapt import register_post_import_hook, wrap_function_wrapper

from .. import guard

Callback = Callable[[ModuleType], None]

_lock = threading.Lock()
#: module names whose one wrapt post-import hook is registered and has not fired yet
_hooked: set[str] = set()
#: module name -> callbacks waiting for its import, with the patcher each belongs to
_waiting: dict[str, list[tuple[LazyPatcher, Callback]]] = {}


def _on_import(module: ModuleType) -> None:
    """wrapt's post-import hook: runs inside the application's ``import`` statement."""
    name = getattr(module, "__name__", "")
    with _lock:
        _hooked.discard(name)  # wrapt fired it once; a later import (after a reload) needs a new one
        waiting = _waiting.pop(name, [])
    for patcher, callback in waiting:
        patcher.run(callback, module)


def waiting_for(name: str) -> int:
    """How many callbacks wait for module ``name`` (for tests: cancelled ones are gone)."""
    with _lock:
        return len(_waiting.get(name, ()))


class LazyPatcher:
    """The patches of one ``instrument()`` of one client library, applied as its modules get imported."""

    def __init__(self, site: str) -> None:
        self.site = site  # guard site prefix for failures, e.g. "openai"
        self._lock = threading.Lock()
        self._active = True
        self._patched: list[tuple[Any, str]] = []

    def when_imported(self, name: str, callback: Callback) -> None:
        """Run ``callback(module)`` now if module ``name`` is imported, else when it is (unless stopped)."""
        with _lock:
            if not self._active:
                return
            module = sys.modules.get(name)
            if module is None:
                _waiting.setdefault(name, []).append((self, callback))
                register = name not in _hooked
                _hooked.add(name)
        if module is not None:
            self.run(callback, module)
        elif register:
            # outside our lock: wrapt calls the hook at once if the module was imported meanwhile
            register_post_import_hook(_on_import, name)

    def run(self, callback: Callback, module: ModuleType) -> None:
        if not self._active:
            return
        try:
            callback(module)
        except Exception as exc:
            guard.report(f"{self.site}.patch", exc)

    def wrap(self, module: ModuleType, method: str, wrapper: Callable[..., Any]) -> bool:
        """Wrap ``module.<Class>.<method>`` (``method`` = "Class.method"); False when it does not exist."""
        owner: Any = module
        *path, attr = method.split(".")
        for part in path:
            owner = getattr(owner, part, None)
            if owner is None:
                return False
        if not hasattr(owner, attr):
            return False
        with self._lock:
            if not self._active:
                return False
            wrap_function_wrapper(module, method, wrapper)
            self._patched.append((owner, attr))
        return True

    def stop(self) -> None:
        """Undo every patch and cancel the callbacks still waiting for an import."""
        with self._lock:
            self._active = False
            patched, self._patched = self._patched, []
        with _lock:
            for name in list(_waiting):
                left = [entry for entry in _waiting[name] if entry[0] is not self]
                if left:
                    _waiting[name] = left
                else:
                    del _waiting[name]
        for owner, attr in reversed(patched):
            unwrap(owner, attr)
