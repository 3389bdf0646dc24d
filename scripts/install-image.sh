#!/usr/bin/env bash
# The image's install step: the project and exactly the dependencies uv.lock pins,
# with the `airflow` extra and without the dev tools, into the virtualenv PREFIX.
# The Dockerfile runs it (PREFIX /app/.venv); tests/deploy/test_dockerfile.py runs the
# same script outside Docker into a temporary PREFIX, so the build is tested without a
# Docker engine.
#
#   bash scripts/install-image.sh [--deps-only] PREFIX
#
# --deps-only  the dependencies alone (the Dockerfile's cached layer, before the code)
# UV           the uv to run (default: uv on PATH)
# UV_PYTHON    the interpreter of the new env (default: python3); uv never downloads one
set -euo pipefail

deps_only=()
if [ "${1:-}" = "--deps-only" ]; then
    deps_only=(--no-install-project)
    shift
fi
[ $# -eq 1 ] || { echo "usage: $0 [--deps-only] PREFIX" >&2; exit 2; }
case "$1" in
    /*) prefix="$1" ;;
    *) prefix="$PWD/$1" ;;
esac

# The project is the folder above this script: the repository, or the image's build
# context with what the Dockerfile copied.
cd "$(dirname "${BASH_SOURCE[0]}")/.."

export UV_PROJECT_ENVIRONMENT="$prefix"
export UV_PYTHON="${UV_PYTHON:-python3}"
export UV_PYTHON_DOWNLOADS=never
# --frozen: exactly uv.lock, never re-resolved. --no-editable: the package is copied into
# the env (with its SQL), so the env works without the source tree.
"${UV:-uv}" sync --frozen --no-dev --extra airflow --no-editable "${deps_only[@]}"
