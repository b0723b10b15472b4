#!/usr/bin/env bash
# The userspace iSCSI target (tgt) that file and lvm back ends export volumes through, bound to
# loopback only. `make services` runs `start`. No systemd here: tgtd runs in the foreground
# (-f) as a background job of this script, its output in $LOGDIR/tgtd.log.
#
# usage: deploy/tgt/tgt-aio.sh start|stop|status
#
#   start   install tgt (and the initiator tools the tests use) when missing; leave a tgtd that
#           answers on the control port alone; otherwise start one and wait until
#           `tgtadm --op show --mode system` answers. Idempotent.
#   stop    remove every target (closing sessions) and shut tgtd down: it ignores SIGTERM,
#           and refuses to exit while targets exist.
#   status  "up" or "down" (exit 1).
#
# Environment overrides:
#   LAMINA_TGT_PORTAL        portal tgtd listens on (127.0.0.1:3260)
#   LAMINA_TGT_CONTROL_PORT  tgtd -C / tgtadm -C: one tgtd per control port (0)
#   LAMINA_TGT_LOGDIR        log directory (/tmp/lamina-tgt)
#   LAMINA_TGT_WAIT          seconds to wait for tgtd to answer or exit (30)
set -euo pipefail

PORTAL=${LAMINA_TGT_PORTAL:-127.0.0.1:3260}
CONTROL_PORT=${LAMINA_TGT_CONTROL_PORT:-0}
LOGDIR=${LAMINA_TGT_LOGDIR:-/tmp/lamina-tgt}
WAIT_SECONDS=${LAMINA_TGT_WAIT:-30}
PACKAGES=(tgt libiscsi-bin qemu-utils qemu-block-extra)
export DEBIAN_FRONTEND=noninteractive

tgtadm_() {
    tgtadm -C "$CONTROL_PORT" "$@"
}

answers() {
    tgtadm_ --op show --mode system >/dev/null 2>&1
}

# wait_until SECONDS CMD...: poll CMD (every 0.1 s) until it succeeds; fail after SECONDS.
wait_until() {
    local deadline=$((SECONDS + $1))
    shift
    until "$@"; do
        ((SECONDS < deadline)) || return 1
        sleep 0.1
    done
}

install_missing() {
    local missing=() pkg
    for pkg in "${PACKAGES[@]}"; do
        dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q 'install ok installed' ||
            missing+=("$pkg")
    done
    ((${#missing[@]} == 0)) && return 0
    echo "installing ${missing[*]}"
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
}

start() {
    install_missing
    if answers; then
        echo "tgtd already answers on control port $CONTROL_PORT"
        return 0
    fi
    mkdir -p "$LOGDIR"
    # setsid + nohup: tgtd outlives this script (and make's shell).
    setsid nohup tgtd -f -C "$CONTROL_PORT" --iscsi "portal=$PORTAL" \
        >>"$LOGDIR/tgtd.log" 2>&1 </dev/null &
    echo $! >"$LOGDIR/tgtd-$CONTROL_PORT.pid"
    if ! wait_until "$WAIT_SECONDS" answers; then
        echo "tgtd did not answer within ${WAIT_SECONDS}s; see $LOGDIR/tgtd.log" >&2
        tail -n 20 "$LOGDIR/tgtd.log" >&2 || true
        exit 1
    fi
    echo "tgtd up: portal $PORTAL, control port $CONTROL_PORT (log $LOGDIR/tgtd.log)"
}

stop() {
    if ! answers; then
        echo "tgtd not running on control port $CONTROL_PORT"
        return 0
    fi
    local tid
    for tid in $(tgtadm_ --lld iscsi --op show --mode target |
                 sed -n 's/^Target \([0-9]*\): .*/\1/p'); do
        tgtadm_ --lld iscsi --op delete --mode target --tid "$tid" --force
    done
    tgtadm_ --op delete --mode system
    if ! wait_until "$WAIT_SECONDS" bash -c '! tgtadm -C "$0" --op show --mode system \
            >/dev/null 2>&1' "$CONTROL_PORT"; then
        echo "tgtd still answers after ${WAIT_SECONDS}s" >&2
        exit 1
    fi
    rm -f "$LOGDIR/tgtd-$CONTROL_PORT.pid"
    echo "tgtd stopped"
}

case ${1:-} in
    start) start ;;
    stop) stop ;;
    status)
        if answers; then echo up; else echo down; exit 1; fi
        ;;
    *)
        echo "usage: $0 start|stop|status" >&2
        exit 2
        ;;
esac
