#!/usr/bin/env bash
# Regenerate deploy/config/policy.yaml.sample from the policy defaults in the code
# (api/policy.py, entry point oslo.policy.policies: lamina) with oslopolicy-sample-generator.
# `make sample-config` runs this.
#
# usage: deploy/config/policy-sample-gen.sh [--check]
#   --check   do not write; exit 1 when the committed sample differs from the code's rules
#
# VENV (default .venv, as in the Makefile) selects the virtualenv holding the generator; the
# package must be installed in it (pip install -e .) so that the entry point is known.
set -euo pipefail

cd "$(dirname "$0")/../.."
VENV=${VENV:-.venv}
GENERATOR=$VENV/bin/oslopolicy-sample-generator
CONF=deploy/config/policy-generator.conf
SAMPLE=deploy/config/policy.yaml.sample

[[ -x $GENERATOR ]] || { echo "$GENERATOR not found: run 'make venv' first" >&2; exit 1; }
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
