#!/usr/bin/env bash
# A second virtualenv, .venv-jh5, with the oldest JupyterHub the bundle supports (5.5), for
# `make test-jupyterhub5`. Rebuilt only when pyproject.toml changes.
set -euo pipefail
cd "$(dirname "$0")/.."

PYTHON=${PYTHON:-python3}
VENV=.venv-jh5
JUPYTERHUB_PIN=${MLTEAMS_JUPYTERHUB5_PIN:-jupyterhub==5.5.1}

stamp="$VENV/.installed-$( (cat pyproject.toml; echo "$JUPYTERHUB_PIN") | sha256sum | cut -c1-12)"
if [ ! -f "$stamp" ]; then
  printf '\033[1m==> creating %s with %s\033[0m\n' "$VENV" "$JUPYTERHUB_PIN"
  [ -x "$VENV/bin/python" ] || "$PYTHON" -m venv "$VENV"
  "$VENV/bin/pip" install -q --upgrade pip
  "$VENV/bin/pip" install -q -e '.[test]' "$JUPYTERHUB_PIN"
  rm -f "$VENV"/.installed-*
  touch "$stamp"
fi
