#!/usr/bin/env bash
# Fresh machine to running demo: create .venv, install radmon, seed and serve the demo.
# Any arguments go to `radmon demo` (e.g. --port 8080, --days 30, --no-serve).
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/venv.sh
ensure_system_libs
ensure_venv ""
exec .venv/bin/radmon demo "$@"
