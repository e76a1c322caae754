#!/usr/bin/env bash
# Create .venv, install radmon with its test extras, and run the suite on SQLite and PostgreSQL.
# PostgreSQL is reached at RADMON_TEST_PG_URL (default postgresql+psycopg2://postgres@127.0.0.1:5432/postgres);
# outside CI its tests are skipped when it is down, with CI=true they fail.
# RADMON_TEST_BACKENDS=sqlite runs SQLite only. Any arguments go to pytest.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/venv.sh
ensure_venv "[test]"
export DO_NOT_TRACK=1 RADMON_TEST_BACKENDS="${RADMON_TEST_BACKENDS:-sqlite,postgresql}"
status=0
# Two workers (the machine has two cores); a test file stays on one worker, so module-scoped
# servers and browsers start once. RADMON_TEST_WORKERS=0 runs in-process.
.venv/bin/python -m pytest -n "${RADMON_TEST_WORKERS:-2}" --dist loadfile "$@" || status=$?
if [ "$status" -eq 5 ]; then
  echo "scripts/test.sh: pytest collected no tests; that is a failure" >&2
  exit 1
fi
exit "$status"
