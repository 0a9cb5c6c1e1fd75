# Sourced by scripts/run and scripts/test: makes .venv (once) and installs the project into it.
# Usage: . scripts/setup_env.sh [extra]   (extra: "test" for the test dependencies)
set -e
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
PY="${PYTHON:-python3}"
if [ ! -x "$ROOT/.venv/bin/python" ]; then
    "$PY" -m venv "$ROOT/.venv"
    "$ROOT/.venv/bin/python" -m pip install -q --upgrade pip
fi
SPEC="$ROOT"
[ -n "${1:-}" ] && SPEC="$ROOT[$1]"
# Re-install only when pyproject.toml changed since the last install. The test install holds all
# the app needs, so after scripts/test, scripts/run installs nothing (pip would need the network).
STAMP="$ROOT/.venv/.installed-${1:-run}"
fresh() { [ -f "$1" ] && [ ! "$ROOT/pyproject.toml" -nt "$1" ]; }
if ! fresh "$STAMP" && ! { [ -z "${1:-}" ] && fresh "$ROOT/.venv/.installed-test"; }; then
    "$ROOT/.venv/bin/python" -m pip install -q -e "$SPEC"
    touch "$STAMP"
fi
. "$ROOT/.venv/bin/activate"
