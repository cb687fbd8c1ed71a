"""The usage-record contract between the cost exporter and a cost API server: one definition, two sides.

The exporter (``llm_otel.exporters.cost``) builds records with these field names and the reference server
(``llm_otel.cost_server``) validates, stores and groups them by the same names, so the two cannot drift.
Standard library only, like the reference server.

Wire protocol:

- ``POST {base}/v1/usage`` with ``{"records": [record, ...]}`` (JSON, optionally gzip-encoded), at most
  :data:`MAX_RECORDS_PER_REQUEST` records. The server stores each record ``id`` once; a repeated id is
  acknowledged as a duplicate and not stored again, which is what makes re-sending safe.
- Answer ``200 {"accepted": n, "duplicates": m}``; or ``400`` with the same fields plus
  ``"errors": [{"index": i, "id": ..., "error": "..."}]`` for the records it rejected (the valid records
  of that request are stored all the same); ``413`` when the request is too large.
- ``GET {base}/v1/costs?start=&end=&group_by=`` returns exact totals; ``group_by`` is a key of
  :data:`GROUP_BY` or ``tag:<key>`` (:func:`group_tag`), at most :data:`MAX_GROUPS` groups listed.

A record is a JSON object with the fields of :data:`RECORD_FIELDS` (a server ignores any others;
``cost_usd`` and ``error_type`` may be omitted for null, ``attributes`` for ``{}``):

- ``id``: unique per call (the exporter uses ``{trace_id}-{span_id}``), at most :data:`MAX_TEXT_CHARS`;
- ``timestamp``: RFC 3339 with a UTC offset (the exporter sends ``...Z`` with microseconds), at most
  :data:`MAX_TIMESTAMP_CHARS` characters, from :data:`MIN_TIMESTAMP` to :data:`MAX_TIMESTAMP` in UTC;
- the :data:`STRING_FIELDS`: non-empty strings of at most :data:`MAX_TEXT_CHARS` characters;
- every string (fields, ``error_type``, attribute keys and values) is valid Unicode text: no lone UTF-16
  surrogate (JSON allows ``"\\ud800"``, UTF-8 storage does not);
- the :data:`TOKEN_FIELDS`: integers from 0 to :data:`MAX_TOKENS` (``total_tokens`` = input + output,
  capped at :data:`MAX_TOKENS`; cached input is part of input, reasoning is part of output);
- ``cost_usd``: a decimal *string* (a JSON number would lose precision), 0 <= cost_usd <
  :data:`MAX_COST_USD` with at most :data:`MAX_COST_PLACES` decimal places (trailing zeros aside), or null
  when the call could not be priced;
- ``latency_ms``: a number, 0 <= latency_ms < :data:`MAX_LATENCY_MS`;
- ``status``: ``"ok"`` or ``"error"``; ``error_type``: a string (required when status is ``"error"``) or
  null;
- ``trace_id`` / ``span_id``: 32 / 16 lowercase hex digits;
- ``attributes``: at most :data:`MAX_ATTRIBUTES` string -> string entries (attribution tags), keys of at
  most :data:`MAX_TEXT_CHARS` and values of at most :data:`MAX_ATTRIBUTE_VALUE_CHARS` characters.
"""

from __future__ import annotations

import re
from datetime import datetime, timezone
from typing import Final

# --- endpoints and envelopes ---------------------------------------------------------------------------

USAGE_PATH: Final = "/v1/usage"
COSTS_PATH: Final = "/v1/costs"
#: Request body: ``{"records": [...]}``.
RECORDS: Final = "records"
#: Answer to a POST: how many records were new, how many were already held, which were rejected.
ACCEPTED: Final = "accepted"
DUPLICATES: Final = "duplicates"
ERRORS: Final = "errors"
#: Keys of one entry of ``errors`` (``error`` is also the key of a whole-request error message).
ERROR_INDEX: Final = "index"
ERROR_ID: Final = "id"
ERROR_MESSAGE: Final = "error"

# --- record fields -------------------------------------------------------------------------------------

ID: Final = "id"
TIMESTAMP: Final = "timestamp"
ORGANIZATION_ID: Final = "organization_id"
SERVICE_NAME: Final = "service_name"
PROVIDER: Final = "provider"
MODEL_ID: Final = "model_id"
OPERATION: Final = "operation"
INPUT_TOKENS: Final = "input_tokens"
OUTPUT_TOKENS: Final = "output_tokens"
TOTAL_TOKENS: Final = "total_tokens"
CACHED_INPUT_TOKENS: Final = "cached_input_tokens"
REASONING_TOKENS: Final = "reasoning_tokens"
COST_USD: Final = "cost_usd"
LATENCY_MS: Final = "latency_ms"
STATUS: Final = "status"
ERROR_TYPE: Final = "error_type"
TRACE_ID: Final = "trace_id"
SPAN_ID: Final = "span_id"
ATTRIBUTES: Final = "attributes"

#: Required non-empty strings.
STRING_FIELDS: Final = (ORGANIZATION_ID, SERVICE_NAME, PROVIDER, MODEL_ID, OPERATION)
#: Non-negative integer token counts.
TOKEN_FIELDS: Final = (INPUT_TOKENS, OUTPUT_TOKENS, TOTAL_TOKENS, CACHED_INPUT_TOKENS, REASONING_TOKENS)
#: Every field of a record, in the order the exporter writes them.
RECORD_FIELDS: Final = (
    ID, TIMESTAMP, *STRING_FIELDS, *TOKEN_FIELDS, COST_USD, LATENCY_MS, STATUS, ERROR_TYPE, TRACE_ID,
    SPAN_ID, ATTRIBUTES,
)  # fmt: skip

STATUS_OK: Final = "ok"
STATUS_ERROR: Final = "error"
STATUSES: Final = (STATUS_OK, STATUS_ERROR)

# --- limits both sides hold to -------------------------------------------------------------------------

MAX_RECORDS_PER_REQUEST: Final = 1000
#: ``id``, the string fields, ``error_type`` and attribute keys.
MAX_TEXT_CHARS: Final = 256
MAX_ATTRIBUTES: Final = 64
MAX_ATTRIBUTE_VALUE_CHARS: Final = 1024
MAX_LATENCY_MS: Final = 1e12
#: Largest token count taken as real, in a record and on a span: every count up to 2**53 is exact as an IEEE
#: double too (JavaScript and most JSON consumers read numbers as floats); SQLite's INTEGER is 64-bit.
MAX_TOKENS: Final = 2**53
#: ``cost_usd`` is below this (USD per record) and has at most ``MAX_COST_PLACES`` decimal places, so every
#: cost is a whole number of 10**-18 USD below 10**27 of them: totals over any number of records a server can
#: hold stay exact in a fixed Decimal precision (the arithmetic is in ``llm_otel.cost_server.store``). The
#: exporter's costs have at most 13 places (pricing counts whole picodollars; a float's shortest repr of
#: such an amount has at most 17 significant digits).
MAX_COST_USD: Final = 10**9
MAX_COST_PLACES: Final = 18
#: Record timestamps lie in this range, in UTC (both ends included): no time before the Unix epoch (no
#: negative epoch values downstream) and none a UTC conversion cannot represent.
MIN_TIMESTAMP: Final = datetime(1970, 1, 1, tzinfo=timezone.utc)
MAX_TIMESTAMP: Final = datetime(9999, 12, 31, 23, 59, 59, 999999, tzinfo=timezone.utc)
#: ``2026-03-01T12:00:00.000000+00:00`` has 32 characters; more is padding (stored as sent).
MAX_TIMESTAMP_CHARS: Final = 64

# --- reports -------------------------------------------------------------------------------------------

#: ``group_by`` value of ``GET /v1/costs`` -> the record field it groups on.
GROUP_BY: Final = {
    "provider": PROVIDER,
    "model": MODEL_ID,
    "service": SERVICE_NAME,
    "organization": ORGANIZATION_ID,
    "operation": OPERATION,
}
#: ``group_by=tag:<key>`` groups by the attribution tag ``<key>`` (``llm_otel.attributes(<key>=...)``);
#: records without that tag form one group whose key is null.
TAG_GROUP_PREFIX: Final = "tag:"
#: A tag key in ``group_by``: an ASCII letter or ``_``, then ASCII letters, digits, ``_``, ``.``, ``-``; at
#: most this many characters.
MAX_GROUP_TAG_CHARS: Final = 128
#: The most groups one answer lists (the largest costs first); the rest are counted in ``groups_omitted``
#: and are still part of ``total``.
MAX_GROUPS: Final = 1000
_TAG_KEY = re.compile(r"[A-Za-z_][A-Za-z0-9_.\-]*")


def group_tag(group_by: str) -> str | None:
    """The tag key of a ``tag:<key>`` group-by, None for a built-in one (:data:`GROUP_BY`); ValueError with
    the reason for anything else."""
    if group_by in GROUP_BY:
        return None
    if group_by.startswith(TAG_GROUP_PREFIX):
        key = group_by[len(TAG_GROUP_PREFIX) :]
        if len(key) > MAX_GROUP_TAG_CHARS:
            raise ValueError(f"a tag key in group_by has at most {MAX_GROUP_TAG_CHARS} characters")
        if _TAG_KEY.fullmatch(key):
            return key
        raise ValueError(
            "a tag key in group_by starts with an ASCII letter or _ and holds only ASCII letters, digits, "
            "_, . and -"
        )
    raise ValueError(f"group_by must be one of {sorted(GROUP_BY)} or {TAG_GROUP_PREFIX}<tag key>")
