#!/usr/bin/env bash
# The demo: a simulated retailer's year of daily exports, run through the pipeline.
# Everything lands under data/demo/ (DuckDB and Parquet on local disk, no server).
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
bash scripts/bootstrap.sh
exec .venv/bin/rfm-pipeline demo "$@"
