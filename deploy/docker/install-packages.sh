#!/bin/sh
# Install the registry (incident-registry) and its client with the operator CLI
# (incident-registry-client[cli]) from the sources into VENV, after
# install-dependencies.sh: nothing is resolved or downloaded here (--no-deps, --no-index).
#
#   sh deploy/docker/install-packages.sh VENV
#
# Run from the source root. setuptools, needed only to build the two packages, is removed
# afterwards, and `pip check` fails the step if any installed requirement is missing.
set -eu

venv="${1:?usage: install-packages.sh VENV}"

"$venv/bin/python" -m pip install --no-deps --no-index --no-build-isolation \
  "./clients[cli]" .
"$venv/bin/python" -m pip uninstall --yes setuptools
"$venv/bin/python" -m pip check
