"""The ``llm-otel`` command: ``cost-api`` (reference server), ``costs`` (report from a cost API) and
``--version``, ``top`` (the live view in a terminal)."""

from __future__ import annotations

import argparse
import json
import math
import re
import signal
import sqlite3
import sys
import threading
import urllib.error
import urllib.request
from collections.abc import Callable, Sequence
from datetime import datetime, timedelta, timezone
from decimal import Decimal
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

from .config import env
from .cost_contract import COSTS_PATH, GROUP_BY, TAG_GROUP_PREFIX, group_tag
from .version import __version__

KEY_ENV = "LLM_OTEL_COST_API_KEY"
URL_ENV = "LLM_OTEL_COST_API_URL"
_DURATION = re.compile(r"(\d+(?:\.\d+)?)\s*([smhdw])")
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}


def _since(value: str, now: datetime) -> datetime:
    """``7d`` / ``12h`` / ``30m`` back from now, or an RFC 3339 time / date."""
    match = _DURATION.fullmatch(value.strip())
    if match:
        try:
            return now - timedelta(seconds=float(match.group(1)) * _UNITS[match.group(2)])
        except OverflowError:
            raise argparse.ArgumentTypeError(f"duration too long (before year 1): {value!r}") from None
    from .cost_server.validation import parse_time

    try:
        return parse_time(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a duration (7d, 12h) or RFC 3339 time: {value!r}") from None


def _group_by(by: str) -> str:
    """``--by``: a built-in group (model, provider, ...), ``tag:KEY``, or a bare tag key such as ``tenant``
    (any name that is not built-in) -> the API's ``group_by``."""
    value = by if by in GROUP_BY or by.startswith(TAG_GROUP_PREFIX) else TAG_GROUP_PREFIX + by
    try:
        group_tag(value)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"--by {by!r}: {exc}") from None
    return value


def _cmd_cost_api(args: argparse.Namespace) -> int:
    from .cost_server import make_server

    key = env(KEY_ENV) or None
    if key is None and not args.no_auth:
        print(f"llm-otel cost-api: set {KEY_ENV} (or pass --no-auth for a local, unauthenticated server)",
              file=sys.stderr)  # fmt: skip
        return 2
    directory = Path(args.db).expanduser().resolve().parent
    if not directory.is_dir():
        print(f"llm-otel cost-api: --db {args.db}: the directory {directory} does not exist", file=sys.stderr)
        return 2
    try:
        api_key = None if args.no_auth else key
        server = make_server(
            args.db, args.host, args.port, api_key, args.max_body_bytes, not args.verbose,
            read_timeout=args.read_timeout, max_connections=args.max_connections, workers=args.workers,
        )  # fmt: skip
    except sqlite3.Error as exc:
        print(f"llm-otel cost-api: cannot open the database {args.db}: {exc}", file=sys.stderr)
        return 1
    except OSError as exc:
        print(f"llm-otel cost-api: cannot listen on {args.host}:{args.port}: {exc}", file=sys.stderr)
        return 1

    def stop(signum: int, frame: object) -> None:
        threading.Thread(target=server.shutdown, daemon=True).start()

    signal.signal(signal.SIGTERM, stop)
    print(f"llm-otel cost API listening on {server.url} (db {args.db})", flush=True)
    try:
        server.serve_forever(poll_interval=0.2)
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
        server.store.close()
    return 0


def _cmd_costs(args: argparse.Namespace) -> int:
    key = args.api_key or env(KEY_ENV)
    url = (args.url or env(URL_ENV) or "").rstrip("/")
    if not url:
        print(f"llm-otel costs: pass --url or set {URL_ENV}", file=sys.stderr)
        return 2
    now = datetime.now(timezone.utc)
    query = {"start": _iso(_since(args.since, now)), "group_by": _group_by(args.by)}
    if args.until:
        query["end"] = _iso(_since(args.until, now))
    request = urllib.request.Request(f"{url}{COSTS_PATH}?{urlencode(query)}")
    if key:
        request.add_header("Authorization", f"Bearer {key}")
    try:
        with urllib.request.urlopen(request, timeout=args.timeout) as resp:
            result = json.load(resp)
    except urllib.error.HTTPError as exc:
        print(f"llm-otel costs: HTTP {exc.code}: {exc.read(500).decode('utf-8', 'replace')}", file=sys.stderr)
        return 1
    except (OSError, ValueError) as exc:
        print(f"llm-otel costs: {url}: {exc}", file=sys.stderr)
        return 1
    if args.json:
        print(json.dumps(result, indent=2))
    else:
        print(format_table(result, query["group_by"]))
    return 0


def _cmd_top(args: argparse.Namespace) -> int:
    from .live.top import TOKEN_ENV, run

    return run(args.url, args.token or env(TOKEN_ENV), once=args.once)


def _iso(when: datetime) -> str:
    return when.astimezone(timezone.utc).isoformat().replace("+00:00", "Z")


def format_table(result: dict[str, Any], by: str) -> str:
    """Fixed-width table of the groups plus a total line; costs printed exactly as the server sent them."""
    name = by[len(TAG_GROUP_PREFIX) :] if by.startswith(TAG_GROUP_PREFIX) else by
    header = (name.upper(), "RECORDS", "INPUT_TOKENS", "OUTPUT_TOKENS", "UNPRICED", "COST_USD")
    rows = [
        ("(none)" if g["key"] is None else str(g["key"]), str(g["records"]), str(g["input_tokens"]),
         str(g["output_tokens"]), str(g["unpriced_records"]), str(Decimal(g["cost_usd"])))
        for g in result.get("groups", [])
    ]  # fmt: skip
    t = result["total"]
    total = ("TOTAL", str(t["records"]), str(t["input_tokens"]), str(t["output_tokens"]),
             str(t["unpriced_records"]), str(Decimal(t["cost_usd"])))  # fmt: skip
    widths = [max(len(r[i]) for r in (header, *rows, total)) for i in range(len(header))]
    omitted = int(result.get("groups_omitted") or 0)

    def line(cells: Sequence[str]) -> str:
        pairs = enumerate(zip(cells, widths, strict=True))
        return "  ".join(c.ljust(w) if i == 0 else c.rjust(w) for i, (c, w) in pairs)

    rule = "  ".join("-" * w for w in widths)
    more = [f"({omitted} more groups not listed; they are in the total)"] if omitted else []
    return "\n".join([line(header), rule, *(line(r) for r in rows), *more, rule, line(total)])


def _positive(kind: Callable[[str], float]) -> Callable[[str], Any]:
    def parse(text: str) -> Any:
        try:
            value = kind(text)
        except ValueError:
            value = 0
        if not 0 < value < math.inf:
            raise argparse.ArgumentTypeError(f"must be a positive, finite {kind.__name__}: {text!r}")
        return value

    return parse


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="llm-otel", description="llm-otel command line tools")
    parser.add_argument("--version", action="version", version=f"llm-otel {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)

    api = sub.add_parser("cost-api", help="run the reference cost API server (SQLite)")
    api.add_argument("--db", required=True, help="SQLite database file (created if missing)")
    api.add_argument("--host", default="127.0.0.1")
    api.add_argument("--port", type=int, default=8787, help="0 picks a free port (printed at start)")
    api.add_argument("--no-auth", action="store_true", help=f"serve without {KEY_ENV} (local use only)")
    api.add_argument("--max-body-bytes", type=int, default=8 * 1024 * 1024)
    api.add_argument("--read-timeout", type=_positive(float), default=10.0, metavar="SECONDS",
                     help="time for a request head, then for its body (default 10)")  # fmt: skip
    api.add_argument("--max-connections", type=_positive(int), default=1000,
                     help="client connections open at once (default 1000)")  # fmt: skip
    api.add_argument("--workers", type=_positive(int), default=16,
                     help="requests answered at once (default 16)")  # fmt: skip
    api.add_argument("--verbose", action="store_true", help="log every request")
    api.set_defaults(func=_cmd_cost_api)

    costs = sub.add_parser("costs", help="print cost totals from a cost API")
    costs.add_argument("--url", help=f"cost API base URL (default ${URL_ENV})")
    costs.add_argument("--api-key", help=f"bearer key (default ${KEY_ENV})")
    costs.add_argument("--since", default="7d", help="7d, 12h, 30m or an RFC 3339 time (default 7d)")
    costs.add_argument("--until", help="end of the window (default now)")
    costs.add_argument("--by", default="model", metavar="GROUP",
                       help=f"{', '.join(GROUP_BY)}, or an attribution tag key (tenant, tag:KEY) "
                            "(default model)")  # fmt: skip
    costs.add_argument("--json", action="store_true", help="print the raw JSON answer")
    costs.add_argument("--timeout", type=float, default=10.0)
    costs.set_defaults(func=_cmd_costs)

    top = sub.add_parser("top", help="watch LLM calls live (in flight, errors, totals) in the terminal")
    top.add_argument(
        "--url",
        default="http://127.0.0.1:9464/live",
        help="the live view: the metrics endpoint's host:port or the /live URL (default %(default)s)",
    )
    top.add_argument("--token", help="bearer token (default $LLM_OTEL_LIVE_TOKEN)")
    top.add_argument("--once", action="store_true", help="print one snapshot as text and exit")
    top.set_defaults(func=_cmd_top)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return int(args.func(args))
    except argparse.ArgumentTypeError as exc:
        print(f"llm-otel: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
