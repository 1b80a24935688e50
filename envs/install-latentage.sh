#!/usr/bin/env bash
# The post-deploy script of every env here (envs/<env>.post-deploy.sh link to this file):
# Snakemake runs it inside the env it has just built (--sdm conda), from its working
# directory, and it installs the latentage package there.
#
# The install is editable: the env imports the workflow's own source, so an edited or pulled
# package is what the next job runs, with no env rebuild (a changed dependency pin changes the
# env file, and so the env's hash: Snakemake builds a new env). Where the source is: the
# folder in $LATENTAGE_SOURCE, else the working directory or one of its parents (Snakemake runs
# from the workflow's root unless --directory moves it).
set -euo pipefail
find_source() {
  local dir
  if [ -n "${LATENTAGE_SOURCE:-}" ]; then
    echo "$LATENTAGE_SOURCE"
    return
  fi
  dir=$(pwd)
  while [ "$dir" != "/" ]; do
    if grep -qs '^name = "latentage"' "$dir/pyproject.toml"; then
      echo "$dir"
      return
    fi
    dir=$(dirname "$dir")
  done
  echo "latentage post-deploy: no pyproject.toml of latentage in $(pwd) or above; run" \
    "snakemake from the workflow's folder or set LATENTAGE_SOURCE to it" >&2
  exit 1
}
src=$(find_source)
python -m pip install --no-deps --no-build-isolation --editable "$src"
python -c "import latentage; print('latentage', latentage.__version__, 'from', latentage.__file__)"
