# Sourced by scripts/*.sh: make .venv (Python >= 3.11) and install radmon into it, editable.
# Re-installs only when pyproject.toml changed since the last install.
ensure_venv() {
  local extras="$1" python="${PYTHON:-python3}" stamp
  if [ ! -x .venv/bin/python ]; then
    if ! "$python" -c 'import sys; sys.exit(sys.version_info < (3, 11))' 2>/dev/null; then
      echo "radmon needs Python 3.11 or newer; set PYTHON=/path/to/python3.11" >&2
      exit 1
    fi
    echo "creating .venv with $("$python" -V)" >&2
    "$python" -m venv .venv
  fi
  stamp=".venv/.radmon-installed${extras}"
  if [ ! -f "$stamp" ] || [ pyproject.toml -nt "$stamp" ]; then
    echo "installing radmon${extras} into .venv (first run takes a few minutes)" >&2
    .venv/bin/python -m pip install --quiet --disable-pip-version-check --upgrade pip
    .venv/bin/python -m pip install --quiet --disable-pip-version-check -e ".${extras}"
    touch "$stamp"
  fi
}
