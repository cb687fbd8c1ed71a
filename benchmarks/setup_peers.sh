#!/usr/bin/env bash
# Creates one venv per peer instrumentation for bench_openai_overhead.py (llm-otel is NOT installed there).
#   bash benchmarks/setup_peers.sh [DIR]        (default DIR: /tmp/llm-otel-bench)
# Every venv gets the same openai / httpx2 / opentelemetry-sdk / wrapt versions as the llm-otel venv
# (read from PYTHON, default /work/venv/bin/python, else python3), so only the instrumentation differs.
set -euo pipefail
DIR="${1:-/tmp/llm-otel-bench}"
PY="${PYTHON:-}"
if [ -z "$PY" ]; then
  if [ -x /work/venv/bin/python ]; then PY=/work/venv/bin/python; else PY=python3; fi
fi
OFFICIAL="${OFFICIAL_SPEC:-opentelemetry-instrumentation-genai-openai==1.3b0}"
OPENLLMETRY="${OPENLLMETRY_SPEC:-opentelemetry-instrumentation-openai==0.62.4}"

# Versions of the shared stack, taken from the llm-otel venv so the runs are comparable.
pins=$("$PY" - <<'PYEOF'
from importlib.metadata import version, PackageNotFoundError
out = []
for name in ("openai", "httpx2", "opentelemetry-api", "opentelemetry-sdk", "wrapt", "pydantic"):
    try:
        out.append(f"{name}=={version(name)}")
    except PackageNotFoundError:
        out.append(name)
print(" ".join(out))
PYEOF
)
echo "shared pins: $pins"
mkdir -p "$DIR"

make_venv() {  # name, extra specs...
  local name="$1"; shift
  local venv="$DIR/$name"
  if [ ! -x "$venv/bin/python" ]; then
    "$PY" -m venv "$venv"
  fi
  # shellcheck disable=SC2086
  "$venv/bin/pip" install -q $pins "$@" 2> >(grep -v "is ignored: it is neither" >&2)
  "$venv/bin/pip" freeze > "$venv/freeze.txt"
  if (cd / && "$venv/bin/python" -c "import llm_otel" 2>/dev/null); then
    echo "error: llm_otel importable in $venv" >&2; exit 1
  fi
  echo "$name: $(grep -i -E '^(opentelemetry-instrumentation-(genai-)?openai|opentelemetry-util-genai|opentelemetry-sdk|openai)==' "$venv/freeze.txt" | tr '\n' ' ')"
}

make_venv official "$OFFICIAL"
make_venv openllmetry "$OPENLLMETRY"
echo "peers ready in $DIR"
