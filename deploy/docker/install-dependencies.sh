#!/bin/sh
# Create the virtualenv VENV and install into it the third-party packages that the
# registry's pyproject.toml and clients/pyproject.toml declare (the client with its `cli`
# extra, and the build requirements of both), but not the two packages themselves.
#
#   sh deploy/docker/install-dependencies.sh VENV
#
# Run from the source root, which needs nothing but those two files and deploy/docker/:
# the Dockerfile runs it before copying the sources, so that the layer is rebuilt only when
# the declared dependencies change. PYTHON names the interpreter (default: python3).
set -eu

venv="${1:?usage: install-dependencies.sh VENV}"
python="${PYTHON:-python3}"
here="$(dirname "$0")"

"$python" -m venv "$venv"
requirements="$(mktemp)"
trap 'rm -f "$requirements"' EXIT
"$venv/bin/python" "$here/requirements.py" pyproject.toml "clients/pyproject.toml[cli]" \
  >"$requirements"
"$venv/bin/python" -m pip install --requirement "$requirements"
