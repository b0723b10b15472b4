#!/usr/bin/env bash
# The LVM commands the lvm back end runs (Debian's lvm2), installed when missing.
# usage: deploy/lvm/lvm-tools.sh install
# Nothing is started: LVM has no daemon here (lvmetad is gone from lvm2 2.03, and this
# machine's kernel has no device-mapper, so volumes are never activated; docs/deploy.md).
set -euo pipefail
export DEBIAN_FRONTEND=noninteractive

case "${1:-install}" in
install)
    if ! dpkg-query -W -f='${Status}' lvm2 2>/dev/null | grep -q 'install ok installed'; then
        echo "lvm-tools: installing lvm2"
        apt-get update -qq
        apt-get install -y -qq --no-install-recommends lvm2 >/dev/null
    fi
    ;;
*)
    echo "usage: $0 install" >&2
    exit 2
    ;;
esac
