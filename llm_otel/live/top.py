"""``llm-otel top``: the live view in a terminal (curses), fed by the ``/live/events`` stream.

Shows the calls in flight (elapsed time ticking between updates), the recent errors, the totals by
provider and model and the cost of the last minute. ``q`` or Ctrl-C quits. A server that is down, a
missing or wrong token, or a URL without a live view give one clear line and exit status 1; a stream that
drops later is retried every 2 s while the last data stays on screen. ``--once`` prints one snapshot as
text and exits (for scripts, and terminals without curses).
"""

from __future__ import annotations

import contextlib
import json
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator, Sequence
from typing import Any
from urllib.parse import urlsplit, urlunsplit

DEFAULT_URL = "http://127.0.0.1:9464/live"
TOKEN_ENV = "LLM_OTEL_LIVE_TOKEN"
RETRY_S = 2.0
READ_TIMEOUT_S = 40.0  # heartbeats come every 15 s: two missed mean the stream is dead


class TopError(Exception):
    """Why the live view cannot be shown (printed as one line)."""


def base_url(url: str) -> str:
    """``http://host:port`` -> ``.../live``; a URL with a path is taken as the mount point; a trailing
    ``/events`` or ``/`` is dropped."""
    parts = urlsplit(url.strip() if "://" in url else "http://" + url.strip())
    path = parts.path.rstrip("/")
    if path.endswith("/events"):
        path = path[: -len("/events")]
    if not path:
        path = "/live"
    return urlunsplit((parts.scheme, parts.netloc, path, "", ""))


def _explain(exc: urllib.error.HTTPError, url: str, token: str | None) -> str:
    try:
        detail = json.loads(exc.read(2000)).get("error", "")
    except Exception:
        detail = ""
    if exc.code == 401:
        if token:
            return f"{url}: the token was refused (check --token / ${TOKEN_ENV})"
        return f"{url}: the live view wants a token: pass --token or set ${TOKEN_ENV}"
    if exc.code == 404:
        why = f" ({detail})" if detail else ""
        return f"{url}: no live view here{why}; is it llm-otel's metrics endpoint, with live on?"
    return f"{url}: HTTP {exc.code} {detail}".rstrip()


def open_stream(url: str, token: str | None, timeout: float = READ_TIMEOUT_S) -> Any:
    """Open ``/events``; raises TopError with a readable reason."""
    request = urllib.request.Request(url + "/events", headers={"Accept": "text/event-stream"})
    if token:
        request.add_header("Authorization", f"Bearer {token}")
    try:
        response = urllib.request.urlopen(request, timeout=timeout)
    except urllib.error.HTTPError as exc:
        raise TopError(_explain(exc, url, token)) from None
    except (urllib.error.URLError, OSError) as exc:
        reason = getattr(exc, "reason", exc)
        raise TopError(
            f"cannot reach {url}: {reason} (is the application running with llm_otel.instrument() and its "
            "metrics endpoint on this host and port?)"
        ) from None
    kind = response.headers.get("Content-Type", "")
    if not kind.startswith("text/event-stream"):
        response.close()
        raise TopError(f"{url}/events: not an event stream ({kind or 'no content type'})")
    return response


def events(response: Any) -> Iterator[tuple[str, str]]:
    """(event, data) pairs of a server-sent event stream; comments and ``retry:`` are skipped."""
    name, data = "message", list[str]()
    for raw in response:
        line = raw.decode("utf-8", "replace").rstrip("\r\n")
        if not line:
            if data:
                yield name, "\n".join(data)
            name, data = "message", list[str]()
        elif line.startswith(":"):
            continue
        else:
            field, _, value = line.partition(":")
            value = value[1:] if value.startswith(" ") else value
            if field == "event":
                name = value
            elif field == "data":
                data.append(value)


# -- rendering (plain text lines; curses and --once share it) -----------------------------------------


def _secs(value: Any) -> str:
    if not isinstance(value, (int, float)):
        return "-"
    if value < 1:
        return f"{value * 1000:.0f} ms"
    return f"{value:.1f} s" if value < 120 else f"{value / 60:.1f} min"


def _usd(value: Any) -> str:
    return "-" if value is None else f"${value}"


def _table(header: tuple[str, ...], rows: Sequence[tuple[str, ...]], right: set[int]) -> list[str]:
    widths = [max(len(r[i]) for r in (header, *rows)) for i in range(len(header))]

    def line(cells: tuple[str, ...]) -> str:
        return "  ".join(c.rjust(w) if i in right else c.ljust(w) for i, (c, w) in
                         enumerate(zip(cells, widths, strict=True))).rstrip()  # fmt: skip

    return [line(header), *(line(r) for r in rows)]


def _flight_row(a: dict[str, Any], extra_elapsed: float) -> tuple[str, ...]:
    tags = " ".join(f"{k}={v}" for k, v in (a.get("tags") or {}).items())
    elapsed = _secs((a.get("elapsed_s") or 0) + extra_elapsed)
    ttfc = _secs(a.get("time_to_first_chunk_s"))
    model = str(a.get("request_model") or "-")
    return (
        model,
        str(a.get("provider")),
        str(a.get("operation")),
        elapsed,
        str(a.get("chunks", 0)),
        ttfc,
        tags,
    )


def _error_row(r: dict[str, Any]) -> tuple[str, ...]:
    model = str(r.get("response_model") or r.get("request_model") or "-")
    ended = str(r.get("end_time", ""))[11:19]
    return (ended, model, str(r.get("provider")), _secs(r.get("duration_s")), str(r.get("error_type")))


def _group_row(g: dict[str, Any]) -> tuple[str, ...]:
    counts = (str(g.get(k, 0)) for k in ("calls", "errors", "input_tokens", "output_tokens"))
    p50, p95 = _secs(g.get("duration_p50_s")), _secs(g.get("duration_p95_s"))
    return (str(g.get("provider")), str(g.get("model")), *counts, _usd(g.get("cost_usd")), p50, p95)


def render(snapshot: dict[str, Any] | None, status: str, url: str, extra_elapsed: float = 0.0) -> list[str]:
    """The screen as lines of text."""
    lines = [f"llm-otel top  {url}  [{status}]" + ("" if status == "snapshot" else "  q quits")]
    if snapshot is None:
        return [*lines, "", "waiting for the first update..."]
    totals = snapshot.get("totals") or {}
    overall = totals.get("overall") or {}
    active = snapshot.get("active") or []
    minute = totals.get("last_minute") or {}
    since = str(totals.get("since", ""))[:19].replace("T", " ")
    lines += [
        f"pid {snapshot.get('pid')}  since {since} UTC",
        f"calls {overall.get('calls', 0)}  errors {overall.get('errors', 0)}  in flight {len(active)}  "
        f"p50 {_secs(overall.get('duration_p50_s'))}  p95 {_secs(overall.get('duration_p95_s'))}",
        f"cost {_usd(overall.get('cost_usd'))}  cost/min {_usd(minute.get('cost_usd'))} (last 60 s)",
    ]
    lines += ["", f"IN FLIGHT ({len(active)})"]
    if active:
        flight = [_flight_row(a, extra_elapsed) for a in active]
        lines += _table(("MODEL", "PROVIDER", "OP", "ELAPSED", "CHUNKS", "TTFC", "TAGS"), flight, {3, 4, 5})
    else:
        lines.append("  none")
    errors = [r for r in snapshot.get("recent") or [] if r.get("status") == "error"]
    lines += ["", f"RECENT ERRORS ({len(errors)} of the last {len(snapshot.get('recent') or [])} calls)"]
    if errors:
        failed = [_error_row(r) for r in errors[:10]]
        lines += _table(("ENDED", "MODEL", "PROVIDER", "DURATION", "ERROR"), failed, {3})
    else:
        lines.append("  none")
    groups = totals.get("by_model") or []
    lines += ["", "TOTALS BY PROVIDER AND MODEL"]
    if groups:
        rows = [_group_row(g) for g in groups]
        header = ("PROVIDER", "MODEL", "CALLS", "ERRORS", "IN TOK", "OUT TOK", "COST USD", "P50", "P95")
        lines += _table(header, rows, {2, 3, 4, 5, 6, 7, 8})
    else:
        lines.append("  none")
    return lines


# -- the feed -----------------------------------------------------------------------------------------


class Feed:
    """Reads the event stream on a daemon thread, reconnecting; the UI polls :meth:`state`."""

    def __init__(self, url: str, token: str | None, first: Any) -> None:
        self.url = url
        self.token = token
        self._lock = threading.Lock()
        self._snapshot: dict[str, Any] | None = None
        self._received = time.monotonic()
        self._status = "live"
        self._changed = True
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, args=(first,), name="llm-otel-top", daemon=True)
        self._thread.start()

    def state(self) -> tuple[dict[str, Any] | None, str, float, bool]:
        """(snapshot, status, seconds since it arrived, changed since the last call)."""
        with self._lock:
            changed, self._changed = self._changed, False
            return self._snapshot, self._status, time.monotonic() - self._received, changed

    def stop(self) -> None:
        self._stop.set()

    def _set(self, snapshot: dict[str, Any] | None = None, status: str | None = None) -> None:
        with self._lock:
            if snapshot is not None:
                self._snapshot = snapshot
                self._received = time.monotonic()
            if status is not None:
                self._status = status
            self._changed = True

    def _run(self, response: Any) -> None:
        while not self._stop.is_set():
            try:
                if response is None:
                    response = open_stream(self.url, self.token)
                self._set(status="live")
                for name, data in events(response):
                    if self._stop.is_set():
                        return
                    if name == "update":
                        self._set(snapshot=json.loads(data))
                self._set(status="stream ended; reconnecting")
            except TopError as exc:
                self._set(status=f"disconnected: {exc}; retrying")
            except Exception as exc:
                self._set(status=f"disconnected: {type(exc).__name__}: {exc}; retrying")
            finally:
                if response is not None:
                    with contextlib.suppress(Exception):
                        response.close()
                response = None
            self._stop.wait(RETRY_S)


def _first_update(response: Any) -> dict[str, Any]:
    for name, data in events(response):
        if name == "update":
            return json.loads(data)  # type: ignore[no-any-return]
    raise TopError("the event stream ended before the first update")


def run(url: str, token: str | None, once: bool = False) -> int:
    base = base_url(url)
    try:
        response = open_stream(base, token)
    except TopError as exc:
        print(f"llm-otel top: {exc}", file=sys.stderr)
        return 1
    if once:
        try:
            snapshot = _first_update(response)
        except (TopError, OSError, ValueError) as exc:
            print(f"llm-otel top: {exc}", file=sys.stderr)
            return 1
        finally:
            response.close()
        print("\n".join(render(snapshot, "snapshot", base)))
        return 0
    try:
        import curses
    except ImportError:  # pragma: no cover - Windows without windows-curses
        print("llm-otel top: curses is not available here; use --once", file=sys.stderr)
        response.close()
        return 1
    feed = Feed(base, token, response)
    try:
        curses.wrapper(_ui, feed, base)
    except KeyboardInterrupt:
        pass
    finally:
        feed.stop()
    return 0


def _ui(screen: Any, feed: Feed, url: str) -> None:
    import curses

    with contextlib.suppress(curses.error):
        curses.curs_set(0)
    screen.timeout(100)
    last_draw = 0.0
    while True:
        key = screen.getch()
        if key in (ord("q"), ord("Q"), 27):
            return
        snapshot, status, age, changed = feed.state()
        now = time.monotonic()
        if not changed and now - last_draw < 0.25 and key != curses.KEY_RESIZE:
            continue
        last_draw = now
        height, width = screen.getmaxyx()
        screen.erase()
        for row, text in enumerate(render(snapshot, status, url, age)[: max(0, height - 1)]):
            with contextlib.suppress(curses.error):
                screen.addnstr(row, 0, text, max(0, width - 1), curses.A_BOLD if row == 0 else 0)
        screen.refresh()
