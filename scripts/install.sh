#!/usr/bin/env bash
# One install path for the README, CI and the Docker images: create .venv/ and install the package.
# usage: scripts/install.sh [EXTRAS]   (default: all)
# env: VENV (default .venv), VENV_PYTHON (the interpreter that creates it; default python3),
#      CONSTRAINTS (the pins; default constraints.txt, constraints-verl.txt for the verl environment)
set -euo pipefail
cd "$(dirname "$0")/.."
extras="${1:-all}"
venv="${VENV:-.venv}"
[ -x "$venv/bin/python" ] || "${VENV_PYTHON:-python3}" -m venv "$venv"
# fast-downward-textworld compiles at install time and calls `python`: the venv's must be first.
export PATH="$PWD/$venv/bin:$PATH"
python -m pip install --quiet --upgrade pip
# torch first, pinned: an unpinned torch requirement would pull a multi-GB CUDA build.
case ",$extras," in
  *,all,*|*,train,*|*,verl,*) python -m pip install --quiet "torch==2.13.0" ;;
esac
python -m pip install --quiet -c "${CONSTRAINTS:-constraints.txt}" -e ".[$extras]"
