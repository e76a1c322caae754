#!/usr/bin/env bash
# Create .venv, install radmon with its test extras, and run the suite on SQLite and PostgreSQL.
# PostgreSQL is reached at RADMON_TEST_PG_URL (default postgresql+psycopg2://postgres@127.0.0.1:5432/postgres);
# outside CI its tests are skipped when it is down, with CI=true they fail.
# RADMON_TEST_BACKENDS=sqlite runs SQLite only. Any arguments go to pytest.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/venv.sh
ensure_system_libs
ensure_venv "[test]"
export DO_NOT_TRACK=1 RADMON_TEST_BACKENDS="${RADMON_TEST_BACKENDS:-sqlite,postgresql}"
# The dashboard's browser tests drive Debian's Chromium through Playwright (never a downloaded
# browser). Install it where we can (root with apt, as .ci/run does); otherwise say loudly which
# tests will be skipped and why, rather than letting them skip quietly.
chromium="${RADMON_TEST_CHROMIUM:-/usr/bin/chromium}"
if [ ! -x "$chromium" ] && [ "$(id -u)" -eq 0 ] && command -v apt-get >/dev/null; then
  echo "scripts/test.sh: installing Chromium for the browser tests (apt-get install chromium)" >&2
  { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends chromium >/dev/null; } ||
    echo "scripts/test.sh: apt-get could not install chromium" >&2
fi
if [ ! -x "$chromium" ]; then
  {
    echo "================================================================================"
    echo "scripts/test.sh: Chromium is missing at $chromium, so these browser tests will be SKIPPED:"
    ls tests/dashboard/test_*browser*.py 2>/dev/null | sed 's/^/  /'
    echo "Install it (Debian/Ubuntu: sudo apt-get install chromium) or point RADMON_TEST_CHROMIUM at one."
    echo "================================================================================"
  } >&2
fi
status=0
# Two workers (the machine has two cores); a test file stays on one worker, so module-scoped
# servers and browsers start once. RADMON_TEST_WORKERS=0 runs in-process.
.venv/bin/python -m pytest -n "${RADMON_TEST_WORKERS:-2}" --dist loadfile "$@" || status=$?
if [ "$status" -eq 5 ]; then
  echo "scripts/test.sh: pytest collected no tests; that is a failure" >&2
  exit 1
fi
exit "$status"
