#!/usr/bin/env bash
# Regenerate deploy/config/lamina.conf.sample from the options in the code (oslo-config-generator
# with deploy/config/lamina-config-generator.conf). `make sample-config` runs this.
#
# usage: deploy/gen-sample-config.sh [--check]
#   --check   do not write; exit 1 when the committed sample differs from the code's options
#
# VENV (default .venv, as in the Makefile) selects the virtualenv holding the generator.
set -euo pipefail

cd "$(dirname "$0")/.."
VENV=${VENV:-.venv}
GENERATOR=$VENV/bin/oslo-config-generator
CONF=deploy/config/lamina-config-generator.conf
SAMPLE=deploy/config/lamina.conf.sample

[[ -x $GENERATOR ]] || { echo "$GENERATOR not found: run 'make venv' first" >&2; exit 1; }
# oslo.messaging imports oslo.service, which imports eventlet, which warns on import
# (EventletDeprecationWarning, not a DeprecationWarning): noise that is not ours.
export PYTHONWARNINGS=ignore

case ${1:-} in
    "")
        "$GENERATOR" --config-file "$CONF"
        echo "wrote $SAMPLE"
        ;;
    --check)
        tmp=$(mktemp)
        trap 'rm -f "$tmp"' EXIT
        "$GENERATOR" --config-file "$CONF" --output-file "$tmp"
        if ! diff -u "$SAMPLE" "$tmp"; then
            echo "$SAMPLE is out of date: run 'make sample-config'" >&2
            exit 1
        fi
        echo "$SAMPLE is up to date"
        ;;
    *)
        echo "usage: $0 [--check]" >&2
        exit 2
        ;;
esac
