# Sourced by the set-up scripts: find_python prints the interpreter the project runs on.
# Python 3.12 is what MWAA 3.3.1 (3.12.13) and Astro Runtime 3.3 run, and the Airflow 3.3.1
# constraints file is resolved for it (numpy 2.5.1, for one, has no 3.11 wheels). PMP_PYTHON overrides.
find_python() {
  local c
  if [[ -n "${PMP_PYTHON:-}" ]]; then echo "$PMP_PYTHON"; return 0; fi
  for c in python3.12 "${PYENV_ROOT:-$HOME/.pyenv}"/versions/3.12*/bin/python3.12 \
           /usr/local/bin/python3.12 /usr/bin/python3.12; do
    if "$c" -c 'import sys, venv; sys.exit(0 if sys.version_info[:2] == (3, 12) else 1)' >/dev/null 2>&1; then
      command -v "$c" 2>/dev/null || echo "$c"
      return 0
    fi
  done
  echo "[setup] Python 3.12 not found (the interpreter of MWAA 3.3.1 and Astro Runtime 3.3, for which the" \
       "Airflow 3.3.1 constraints are resolved): install it or set PMP_PYTHON" >&2
  return 1
}
