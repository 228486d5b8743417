#!/usr/bin/env bash
# Install everything the demo and the tests need on a fresh machine, from the package registries:
# Debian packages (Chromium for the browser tests), the Python virtualenv with this bundle and its
# test extras, configurable-http-proxy and the local OIDC provider (oidc-provider) from npm, and
# the Kubernetes control plane and the MinIO object store built from Go modules (cached outside the
# repository), the Python the pods run (a stand-in of the notebook image's, see
# devenv/notebook_image.py), and MLServer for the rig's predictor pods in its own virtualenv
# (.venv-mlserver, see devenv/serving/environment.py), and the JupyterLab side panel built with
# jlpm. Each step is skipped when it is already done.
set -euo pipefail
cd "$(dirname "$0")/.."

PYTHON=${PYTHON:-python3}
VENV=.venv
LOCAL=${MLTEAMS_LOCAL_DIR:-.local}
say() { printf '\033[1m==> %s\033[0m\n' "$*"; }

need() {
  command -v "$1" >/dev/null 2>&1 || { echo "error: $1 is required ($2)" >&2; exit 1; }
}
need "$PYTHON" "Python 3.10 or newer"
need node "Node.js 18 or newer, for configurable-http-proxy"
need npm "npm, for configurable-http-proxy"
need go "Go 1.25 or newer, to build the Kubernetes control plane and the object store"
"$PYTHON" -c 'import sys; sys.exit(sys.version_info < (3, 10))' || { echo "error: Python 3.10+ needed" >&2; exit 1; }

apt_missing=()
command -v chromium >/dev/null 2>&1 || apt_missing+=(chromium)
command -v unshare >/dev/null 2>&1 || apt_missing+=(util-linux)
# the mlteams service's database tests run on a real PostgreSQL (devenv/postgres.py)
ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || apt_missing+=(postgresql)
if ((${#apt_missing[@]})); then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    say "installing Debian packages: ${apt_missing[*]}"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${apt_missing[@]}" >/dev/null
  else
    echo "error: please install the Debian packages: ${apt_missing[*]}" >&2
    exit 1
  fi
fi

# The Go builds (the Kubernetes control plane and etcd, then MinIO) are the longest steps on a new
# machine and need only Python's standard library: they run in the background, in a process group
# of their own, beside the Python and npm installs below, and are waited for at the end.
go_log=$(mktemp "${TMPDIR:-/tmp}/mlteams-go-build.XXXXXX")
set -m
bash -c '"$1" -m devenv.kube_build && "$1" -m devenv.objectstore_build' _ "$PYTHON" \
  >"$go_log" 2>&1 </dev/null &
go_pid=$!
set +m
stop_go_build() {
  kill -- "-$go_pid" 2>/dev/null || true
  rm -f "$go_log"
}
trap stop_go_build EXIT

stamp="$VENV/.installed-$(cat pyproject.toml | sha256sum | cut -c1-12)"
if [ ! -f "$stamp" ]; then
  say "creating the Python environment in $VENV (jupyterhub, kubespawner, mlflow, jupyterlab, test tools)"
  [ -x "$VENV/bin/python" ] || "$PYTHON" -m venv "$VENV"
  "$VENV/bin/pip" install -q --upgrade pip
  "$VENV/bin/pip" install -q -e '.[test]'
  rm -f "$VENV"/.installed-*
  touch "$stamp"
fi

if [ ! -x "$LOCAL/node/node_modules/.bin/configurable-http-proxy" ]; then
  say "installing configurable-http-proxy from npm into $LOCAL/node"
  mkdir -p "$LOCAL/node"
  npm install --silent --no-audit --no-fund --prefix "$LOCAL/node" configurable-http-proxy@5 >/dev/null
fi

oidc_stamp="$LOCAL/oidc/.installed-$(cat devenv/oidc/package-lock.json | sha256sum | cut -c1-12)"
if [ ! -f "$oidc_stamp" ]; then
  say "installing the local OIDC provider (oidc-provider) from npm into $LOCAL/oidc"
  mkdir -p "$LOCAL/oidc"
  cp devenv/oidc/package.json devenv/oidc/package-lock.json "$LOCAL/oidc/"
  npm ci --silent --no-audit --no-fund --prefix "$LOCAL/oidc" >/dev/null
  rm -f "$LOCAL"/oidc/.installed-*
  touch "$oidc_stamp"
fi

# MLServer runs the predictor pods of the rig's serving controller (devenv/serving/). Its pins may
# clash with the bundle's, so it has its own virtualenv; the packages a saved model needs (mlflow,
# scikit-learn, numpy, pandas, ...) are pinned to the versions in $VENV.
MLSERVER_VENV=.venv-mlserver
mlserver_requirements=$("$VENV/bin/python" -m devenv.serving.environment)
mlserver_stamp="$MLSERVER_VENV/.installed-$(printf '%s\n' "$mlserver_requirements" | sha256sum | cut -c1-12)"
if [ ! -f "$mlserver_stamp" ]; then
  say "creating the MLServer environment in $MLSERVER_VENV (mlserver, mlserver-mlflow, as pinned by devenv/serving/environment.py)"
  [ -x "$MLSERVER_VENV/bin/python" ] || "$PYTHON" -m venv "$MLSERVER_VENV"
  printf '*\n' >"$MLSERVER_VENV/.gitignore"
  "$MLSERVER_VENV/bin/pip" install -q --upgrade pip
  # shellcheck disable=SC2086 # one requirement a line
  "$MLSERVER_VENV/bin/pip" install -q $mlserver_requirements
  rm -f "$MLSERVER_VENV"/.installed-*
  touch "$mlserver_stamp"
fi

# The JupyterLab side panel (src/, style/): jlpm (from the jupyter-builder package in $VENV)
# installs its npm dependencies as yarn.lock pins them and builds it into server_ext/labextension,
# which is linked into $VENV's JupyterLab (and so into the rig's pods). Rebuilt when its sources
# change.
lab_sources=$(cat package.json yarn.lock tsconfig.json $(find src style -type f | sort) | sha256sum | cut -c1-12)
lab_stamp="$LOCAL/.labextension-built-$lab_sources"
if [ ! -f "$lab_stamp" ]; then
  say "building the JupyterLab side panel with jlpm into server_ext/labextension"
  PATH="$PWD/$VENV/bin:$PATH" "$VENV/bin/jlpm" install --immutable >/dev/null
  PATH="$PWD/$VENV/bin:$PATH" "$VENV/bin/jlpm" build:prod >/dev/null
  mkdir -p "$LOCAL"; rm -f "$LOCAL"/.labextension-built-*
  touch "$lab_stamp"
fi
if [ ! -L "$VENV/share/jupyter/labextensions/jupyterhub-mlteams" ]; then
  mkdir -p "$VENV/share/jupyter/labextensions"
  rm -rf "$VENV/share/jupyter/labextensions/jupyterhub-mlteams"
  ln -s "$PWD/server_ext/labextension" "$VENV/share/jupyter/labextensions/jupyterhub-mlteams"
fi

say "Kubernetes control plane, etcd and object store (MinIO) binaries, built from Go modules"
if ! wait "$go_pid"; then
  cat "$go_log" >&2
  echo "error: building the Go programs failed (output above)" >&2
  exit 1
fi
cat "$go_log"

say "the pods' Python: a stand-in of the notebook image's, with a user site (devenv/notebook_image.py)"
"$VENV/bin/python" -m devenv.notebook_image >/dev/null
