#!/usr/bin/env bash
# Creates the virtualenv with a Python >= 3.11, installing Debian's python3-venv
# when the interpreter lacks it and we are root. Says exactly what to do otherwise.
set -euo pipefail
py="$1"; venv="$2"
if ! command -v "$py" >/dev/null 2>&1; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq python3 python3-venv python3-dev
  else
    echo "error: $py not found; install Python >= 3.11 (sudo apt-get install python3 python3-venv)" >&2; exit 1
  fi
fi
"$py" -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else 1)' || {
  echo "error: $py is $("$py" --version 2>&1); hazmon needs Python >= 3.11 (set PYTHON=python3.11)" >&2; exit 1; }
if [ -x "$venv/bin/python" ]; then exit 0; fi
if ! "$py" -m venv "$venv" 2>/dev/null; then
  rm -rf "$venv"
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    ver=$("$py" -c 'import sys; print(f"{sys.version_info[0]}.{sys.version_info[1]}")')
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "python${ver}-venv" || \
      DEBIAN_FRONTEND=noninteractive apt-get install -y -qq python3-venv
    "$py" -m venv "$venv"
  else
    echo "error: '$py -m venv' failed; run: sudo apt-get install python3-venv" >&2; exit 1
  fi
fi
