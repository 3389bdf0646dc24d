#!/usr/bin/env bash
# The tests: lint, types, then pytest. `--all` adds the slow suites (CI runs those too).
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
bash scripts/bootstrap.sh

marker=(-m "not slow")
extra=()
if [ "${1:-}" = "--all" ]; then
    marker=()
    extra=(--hypothesis-profile=thorough)  # more examples per property (tests/conftest.py)
    shift
fi

.venv/bin/ruff check .
.venv/bin/mypy
# loadscope: a module's tests share one worker, so a module fixture is built once; in
# collection order, which puts the longest units first (tests/conftest.py), not xdist's
# default of the modules with the most tests first.
exec .venv/bin/pytest -n auto --dist loadscope --no-loadscope-reorder \
    "${marker[@]}" "${extra[@]}" "$@"
