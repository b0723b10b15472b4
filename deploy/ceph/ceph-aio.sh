#!/usr/bin/env bash
# Single-node ("all in one") Ceph cluster for Lamina's RBD driver tests and benchmarks.
#
# One mon, one mgr and one OSD, all bound to 127.0.0.1, cephx on, the OSD's BlueStore living in
# a sparse regular file: no block device, no kernel module, no systemd needed. Made for Debian 12
# (Ceph 16 "pacific" from Debian's own packages), run as root.
#
# usage: deploy/ceph/ceph-aio.sh COMMAND
#
#   install      apt-get install the Debian packages below (skipped when all are installed)
#   start        bootstrap the cluster (first time) or restart its daemons (data kept); a no-op
#                when it already runs and is healthy. Waits until it is ready, then prints the
#                conf, the keyrings and the fsid.
#   stop         stop the daemons (SIGTERM, OSD first), keep the data
#   status       print the daemons and `ceph -s`; exit 1 when the cluster is not running
#   destroy      stop and delete the state directory (and the /etc/ceph files this script wrote)
#   pybind VENV  make Debian's rados/rbd Python extensions importable in the virtualenv VENV
#   env          print shell exports for tests: eval "$(deploy/ceph/ceph-aio.sh env)"
#
# Environment (all optional):
#   LAMINA_CEPH_DIR            state directory (/var/lib/lamina-ceph)
#   LAMINA_CEPH_OSD_SIZE_GB    apparent size of the sparse BlueStore file (20); bootstrap only
#   LAMINA_CEPH_OSD_MEMORY_MB  osd_memory_target (1024); bootstrap only
#   LAMINA_CEPH_PG_NUM         PGs per pool (16); bootstrap only
#   LAMINA_CEPH_MON_PORT       msgr2 port of the mon (3300); msgr1 is LAMINA_CEPH_MON_PORT_V1
#                              (6789). Bootstrap only; change both to run a second cluster.
#   LAMINA_CEPH_WAIT           seconds `start` waits for the cluster to be ready (120)
#   LAMINA_CEPH_ETC=0          never touch /etc/ceph (e.g. for a throw-away second cluster)
#
# Everything (conf, keyrings, mon/mgr/osd data, logs, pid files, admin sockets) lives under the
# state directory. /etc/ceph/ceph.conf and /etc/ceph/ceph.client.admin.keyring are written too,
# for tools run without -c, but only when they are missing or were written by this script: a
# marker comment on their first line says so. Another cluster's files are left alone.
set -euo pipefail

# ---------------------------------------------------------------------------- settings

PACKAGES=(ceph-mon ceph-mgr ceph-osd ceph-common python3-rados python3-rbd qemu-utils qemu-block-extra)

DIR=${LAMINA_CEPH_DIR:-/var/lib/lamina-ceph}
[[ $DIR == /* ]] || DIR=$PWD/$DIR
DIR=${DIR%/}
OSD_SIZE_GB=${LAMINA_CEPH_OSD_SIZE_GB:-20}
OSD_MEMORY_MB=${LAMINA_CEPH_OSD_MEMORY_MB:-1024}
PG_NUM=${LAMINA_CEPH_PG_NUM:-16}
MON_PORT=${LAMINA_CEPH_MON_PORT:-3300}
MON_PORT_V1=${LAMINA_CEPH_MON_PORT_V1:-6789}
WAIT_SECONDS=${LAMINA_CEPH_WAIT:-120}
WRITE_ETC=${LAMINA_CEPH_ETC:-1}

CONF=$DIR/ceph.conf
ADMIN_KEYRING=$DIR/ceph.client.admin.keyring
CLIENT=lamina                                  # the cephx user Lamina's RBD driver uses
CLIENT_KEYRING=$DIR/ceph.client.$CLIENT.keyring
POOLS=(volumes backups)
MON_ID=a
MGR_ID=x
OSD_ID=0
OWNED_MARK=$DIR/.lamina-ceph                   # "this directory was made by this script"
DONE_MARK=$DIR/.bootstrapped                   # "bootstrap finished"
ETC_MARK="# lamina-ceph: written by deploy/ceph/ceph-aio.sh for"   # + " $DIR"
PY=/usr/bin/python3   # Debian's interpreter: the one python3-rados/python3-rbd are built for

# ---------------------------------------------------------------------------- helpers

T0=$(date +%s%N)
log() { printf '[ceph-aio %6.1fs] %s\n' "$((($(date +%s%N) - T0) / 1000000))e-3" "$*" >&2; }
die() { log "ERROR: $*"; exit 1; }

# ceph CLI as client.admin of this cluster, never hanging for long.
ceph_() { timeout 60 ceph -c "$CONF" -n client.admin -k "$ADMIN_KEYRING" --connect-timeout 15 "$@"; }

# port_open PORT: something accepts TCP connections on 127.0.0.1:PORT.
port_open() { timeout 2 bash -c "exec 3<>/dev/tcp/127.0.0.1/$1" 2>/dev/null; }

# daemon_pid TYPE.ID: the pid of this cluster's daemon, from its pid file, checked against
# /proc (the process must be alive and have our conf on its command line).
daemon_pid() {
    local file=$DIR/run/ceph-$1.pid pid
    [[ -s $file ]] || return 1
    pid=$(<"$file")
    [[ $pid =~ ^[0-9]+$ && -r /proc/$pid/cmdline ]] || return 1
    tr '\0' ' ' <"/proc/$pid/cmdline" | grep -qF -- " $CONF " || return 1
    echo "$pid"
}

all_running() {
    daemon_pid "mon.$MON_ID" >/dev/null && daemon_pid "mgr.$MGR_ID" >/dev/null &&
        daemon_pid "osd.$OSD_ID" >/dev/null
}

# One lock per state directory, so that parallel `start`s (two test sessions) do not both
# bootstrap. Kept outside the directory, which `destroy` deletes.
take_lock() {
    exec 9>"/tmp/lamina-ceph.$(printf '%s' "$DIR" | cksum | cut -d' ' -f1).lock"
    flock -w 600 9 || die "could not lock $DIR (another ceph-aio.sh still running?)"
}

need_binaries() {
    local b
    for b in ceph ceph-mon ceph-mgr ceph-osd ceph-authtool monmaptool rbd "$PY"; do
        command -v "$b" >/dev/null || die "$b not found: run '$0 install' first"
    done
    "$PY" -c 'import rados, rbd' 2>/dev/null || die "python3-rados/python3-rbd missing: run '$0 install'"
}

# Cluster-side helper in Python (Debian's python3 + librados): one connection and one cephx
# handshake instead of a `ceph` CLI process (~0.3 s) per command.
#   setup PG_NUM USER KEYRING POOL...  create the pools (size 1, rbd application, rbd pool
#                                      init) and the cephx user; write the user's keyring
#   wait SECONDS                       until HEALTH_OK/HEALTH_WARN, the OSD up and in, and
#                                      every PG of every pool active+clean since the OSD's
#                                      last boot (SECONDS=0: check once). Exit 0 when ready.
clusterpy() {
    "$PY" - "$CONF" "$ADMIN_KEYRING" "$@" <<'PYEOF'
import json, os, sys, time
import rados, rbd

conf, keyring, action, *args = sys.argv[1:]


def connect(timeout):
    r = rados.Rados(conffile=conf, rados_id="admin", conf={"keyring": keyring})
    r.connect(timeout=max(1, int(timeout)))
    return r


def mon(r, prefix, fmt="json", **kw):
    cmd = dict(prefix=prefix, **kw)
    if fmt:
        cmd["format"] = fmt
    ret, out, err = r.mon_command(json.dumps(cmd), b"", timeout=60)
    if ret:
        raise RuntimeError(f"'{prefix}' failed: {err.strip()} ({ret})")
    if fmt != "json":
        return out
    return json.loads(out) if out.strip() else None


def setup(pg_num, user, user_keyring, *pools):
    r = connect(30)
    existing = {p["pool_name"]: p for p in mon(r, "osd pool ls", detail="detail")}
    for name in pools:
        pool = existing.get(name)
        if pool is None:
            mon(r, "osd pool create", pool=name, pg_num=int(pg_num), pgp_num=int(pg_num))
            pool = {"size": None, "min_size": None, "application_metadata": {}}
            print(f"created pool {name} ({pg_num} PGs)", file=sys.stderr)
        # One OSD: one replica. (The conf's defaults already say so; this covers old pools.)
        if pool["size"] not in (None, 1):
            mon(r, "osd pool set", pool=name, var="size", val="1", yes_i_really_mean_it=True)
        if pool["min_size"] not in (None, 1):
            mon(r, "osd pool set", pool=name, var="min_size", val="1")
        if "rbd" not in pool["application_metadata"]:
            with r.open_ioctx(name) as ioctx:      # = `rbd pool init NAME`
                rbd.RBD().pool_init(ioctx, False)
    # cephx user for Lamina, as the Ceph docs suggest for Cinder (mgr caps for rbd's mgr tasks;
    # read-only on Glance's pool `images`, made by deploy/glance/glance-aio.sh, whose images
    # a volume is cloned from: it writes the same caps string)
    pool_caps = ", ".join(f"profile rbd pool={p}" for p in pools)
    caps = ["mon", "profile rbd", "osd", pool_caps + ", profile rbd-read-only pool=images",
            "mgr", pool_caps]
    entity = f"client.{user}"
    try:
        mon(r, "auth get-or-create", fmt=None, entity=entity, caps=caps)
    except RuntimeError:                           # exists with other caps: set ours
        mon(r, "auth caps", fmt=None, entity=entity, caps=caps)
    text = mon(r, "auth get", fmt=None, entity=entity)
    old = open(user_keyring, "rb").read() if os.path.exists(user_keyring) else None
    if text != old:
        tmp = user_keyring + ".tmp"
        with open(os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600), "wb") as f:
            f.write(text)
        os.replace(tmp, user_keyring)
    r.shutdown()


def readiness(r):
    health = mon(r, "status")["health"]
    osdmap = mon(r, "osd dump")
    pgs = (mon(r, "pg ls") or {}).get("pg_stats", [])
    osds = osdmap["osds"]
    n_up = sum(1 for o in osds if o["up"] and o["in"])
    want = sum(p["pg_num"] for p in osdmap["pools"])
    # A PG counts once it was reported active+clean after the OSDs' last boot: HEALTH_OK is
    # reported while new PGs still peer, and right after an OSD restart (say after a SIGKILL)
    # the mgr still shows the previous OSD instance's "active+clean".
    booted = max((o["up_from"] for o in osds), default=0)
    clean = sum(1 for p in pgs if p["state"] == "active+clean" and p["reported_epoch"] >= booted)
    ready = (health["status"] in ("HEALTH_OK", "HEALTH_WARN") and osds and n_up == len(osds)
             and len(pgs) == want and clean == want)
    checks = sorted(health.get("checks", {}))
    summary = (f"{health['status']}{' ' + ','.join(checks) if checks else ''}; "
               f"{n_up}/{len(osds)} OSDs up and in; {len(osdmap['pools'])} pools, "
               f"{clean}/{want} PGs active+clean")
    return ready, summary


def wait(seconds):
    deadline = time.monotonic() + float(seconds)
    r, last = None, "not connected"
    while True:
        try:
            if r is None:
                r = connect(min(10, max(1, deadline - time.monotonic())))
            ready, last = readiness(r)
            if ready:
                print(last)
                return 0
        except (rados.Error, RuntimeError, KeyError) as e:
            last = f"{type(e).__name__}: {e}"
            if r is not None and isinstance(e, rados.Error):
                r.shutdown()
                r = None
        if time.monotonic() >= deadline:
            print(f"not ready: {last}", file=sys.stderr)
            return 1
        time.sleep(0.25)


if action == "setup":
    setup(*args)
elif action == "wait":
    sys.exit(wait(*args))
else:
    sys.exit(f"unknown action {action}")
PYEOF
}

# ---------------------------------------------------------------------------- /etc/ceph

# etc_ours FILE: FILE may be (over)written by this cluster: it is missing, or it carries our
# marker for this state directory, or our marker for a state directory whose cluster is gone.
etc_ours() {
    local first other
    [[ -e $1 || -L $1 ]] || return 0
    [[ -f $1 && ! -L $1 ]] || return 1
    IFS= read -r first <"$1" || return 1
    [[ $first == "$ETC_MARK "* ]] || return 1
    other=${first#"$ETC_MARK "}
    [[ $other == "$DIR" || ! -f $other/.bootstrapped ]]
}

# etc_write SRC DEST MODE: copy SRC to DEST behind the marker line, unless DEST is not ours.
etc_write() {
    local src=$1 dest=$2 mode=$3 tmp
    if ! etc_ours "$dest"; then
        log "leaving $dest alone: it belongs to another cluster (unmarked, or marked by a live one)"
        return 0
    fi
    tmp=$(mktemp "$dest.XXXXXX")
    { echo "$ETC_MARK $DIR"; cat "$src"; } >"$tmp"
    chmod "$mode" "$tmp"
    if cmp -s "$tmp" "$dest" 2>/dev/null; then rm -f "$tmp"; else mv -f "$tmp" "$dest"; fi
}

write_etc() {
    [[ $WRITE_ETC == 1 ]] || return 0
    if ! mkdir -p /etc/ceph 2>/dev/null || [[ ! -w /etc/ceph ]]; then
        log "cannot write /etc/ceph (not root?): skipped"
        return 0
    fi
    etc_write "$CONF" /etc/ceph/ceph.conf 644
    etc_write "$ADMIN_KEYRING" /etc/ceph/ceph.client.admin.keyring 600
}

# remove the /etc/ceph files this script wrote for THIS state directory
remove_etc() {
    local f first
    for f in /etc/ceph/ceph.conf /etc/ceph/ceph.client.admin.keyring; do
        [[ -f $f && ! -L $f ]] || continue
        IFS= read -r first <"$f" || continue
        if [[ $first == "$ETC_MARK $DIR" ]]; then rm -f "$f" && log "removed $f"; fi
    done
}

# ---------------------------------------------------------------------------- daemons

start_daemon() {   # start_daemon TYPE ID: start one daemon (they fork into the background)
    local type=$1 id=$2
    daemon_pid "$type.$id" >/dev/null && return 0
    # 9>&-: the daemon must not inherit (and so hold forever) the lock taken by take_lock
    "ceph-$type" -c "$CONF" -i "$id" >>"$DIR/log/ceph-$type.$id.out" 2>&1 9>&- ||
        die "ceph-$type -i $id failed to start; see $DIR/log/ceph-$type.$id.log and .out"
    local i pid=
    for ((i = 0; i < 50; i++)); do pid=$(daemon_pid "$type.$id") && break; sleep 0.1; done
    log "$type.$id started (pid ${pid:-?})"
}

start_daemons() {
    if ! daemon_pid "mon.$MON_ID" >/dev/null; then
        local port
        for port in $(mon_ports); do
            port_open "$port" && die "127.0.0.1:$port is taken by another process (another Ceph?)"
        done
    fi
    start_daemon mon "$MON_ID"
    start_daemon mgr "$MGR_ID"
    start_daemon osd "$OSD_ID"
}

# the mon's two ports, from the conf (they are fixed at bootstrap)
mon_ports() { grep -oE '127\.0\.0\.1:[0-9]+' "$CONF" 2>/dev/null | cut -d: -f2 | sort -u; }

# stop_pids NAME...: SIGTERM the named daemons of this cluster, wait (30 s), then SIGKILL.
stop_pids() {
    local name pid pids=() i
    for name in "$@"; do
        if pid=$(daemon_pid "$name"); then kill -TERM "$pid" 2>/dev/null || true; pids+=("$pid"); fi
    done
    for pid in "${pids[@]}"; do
        for ((i = 0; i < 300; i++)); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
        if kill -0 "$pid" 2>/dev/null; then
            log "pid $pid still alive after 30 s: SIGKILL"
            kill -KILL "$pid" 2>/dev/null || true
        fi
    done
    echo "${#pids[@]}"
}

stop_daemons() {
    local n=0
    # The OSD first, while the mon can still record it as cleanly down; then mgr and mon.
    n=$((n + $(stop_pids "osd.$OSD_ID")))
    n=$((n + $(stop_pids "mgr.$MGR_ID" "mon.$MON_ID")))
    rm -f "$DIR"/run/*.asok 2>/dev/null || true
    echo "$n"
}

wait_ready() {
    local summary
    if ! summary=$(clusterpy wait "$WAIT_SECONDS"); then
        ceph_ -s >&2 || true
        die "cluster not ready after ${WAIT_SECONDS}s; logs in $DIR/log"
    fi
    log "ready: $summary"
}

print_info() {
    local fsid
    fsid=$(sed -n 's/^fsid = //p' "$CONF")
    echo "conf:           $CONF"
    echo "admin keyring:  $ADMIN_KEYRING"
    echo "$CLIENT keyring: $CLIENT_KEYRING   (client.$CLIENT: profile rbd on ${POOLS[*]}, read-only on images)"
    echo "fsid:           $fsid"
}

# ---------------------------------------------------------------------------- bootstrap

write_conf() {
    local fsid=$1
    cat >"$CONF" <<EOF
# Lamina test cluster, written by deploy/ceph/ceph-aio.sh: one node, loopback only, pools of
# size 1. NOT a production configuration.
[global]
fsid = $fsid
mon_host = [v2:127.0.0.1:$MON_PORT,v1:127.0.0.1:$MON_PORT_V1]
public_network = 127.0.0.0/8
cluster_network = 127.0.0.0/8
public_addr = 127.0.0.1
cluster_addr = 127.0.0.1
ms_bind_ipv6 = false
auth_cluster_required = cephx
auth_service_required = cephx
auth_client_required = cephx
auth_allow_insecure_global_id_reclaim = false
# everything under the state directory
run_dir = $DIR/run
admin_socket = $DIR/run/\$cluster-\$name.asok
pid_file = $DIR/run/\$cluster-\$name.pid
log_file = $DIR/log/\$cluster-\$name.log
mon_cluster_log_file = $DIR/log/\$cluster.log
mon_cluster_log_file_level = info
crash_dir = $DIR/crash
# one OSD: one replica, no failure domain, fixed (small) PG counts
osd_pool_default_size = 1
osd_pool_default_min_size = 1
osd_pool_default_pg_num = $PG_NUM
osd_pool_default_pgp_num = $PG_NUM
osd_pool_default_pg_autoscale_mode = off
osd_crush_chooseleaf_type = 0
mon_allow_pool_size_one = true
mon_allow_pool_delete = true
mon_warn_on_pool_no_redundancy = false
# the disk is shared with everything else: do not warn at the usual 30 % free
mon_data_avail_warn = 2
mon_data_avail_crit = 1
# Fast mon proposals (default 1 s makes every snapshot create/remove take ~1 s) and fast
# PG-stat/health propagation (defaults 5 s) so readiness is seen sooner. Real clusters keep the
# defaults: tests must not bake these latencies into timeouts.
paxos_propose_interval = 0.01
paxos_min_wait = 0.001
mgr_stats_period = 1
mon_mgr_digest_period = 1
mgr_tick_period = 1
# lean on a 2-core machine shared with the tests: fewer messenger threads, and no mgr modules
# beyond the always-on ones but iostat (no restful/nfs). Read by the mon at mkfs.
ms_async_op_threads = 2
mgr_initial_modules = iostat
# RBD image features as Cinder uses them: layering, exclusive-lock, object-map, fast-diff,
# deep-flatten
rbd_default_features = 61

[client]
# Not in [global]: the daemons would read it instead of their own keyrings and fail cephx.
keyring = $DIR/ceph.\$name.keyring

[mon]
mon_data = $DIR/mon/\$cluster-\$id
keyring = \$mon_data/keyring

[mgr]
mgr_data = $DIR/mgr/\$cluster-\$id
keyring = \$mgr_data/keyring

[osd]
osd_data = $DIR/osd/\$cluster-\$id
keyring = \$osd_data/keyring
osd_objectstore = bluestore
# BlueStore in the sparse regular file osd_data/block, created at mkfs. (Do not set
# bluestore_block_path to that same path: BlueStore symlinks it and mkfs fails with ELOOP.)
bluestore_block_create = true
bluestore_block_size = $((OSD_SIZE_GB * 1024 * 1024 * 1024))
bluestore_fsck_on_mount = false
osd_memory_target = $((OSD_MEMORY_MB * 1024 * 1024))
osd_op_num_shards = 2
osd_op_num_threads_per_shard = 2
osd_fast_shutdown = false
osd_class_update_on_start = false
EOF
}

bootstrap() {
    local fsid osd_uuid id
    fsid=$(cat /proc/sys/kernel/random/uuid)
    osd_uuid=$(cat /proc/sys/kernel/random/uuid)
    local port
    for port in "$MON_PORT" "$MON_PORT_V1"; do
        port_open "$port" && die "127.0.0.1:$port is taken (another Ceph?): set LAMINA_CEPH_MON_PORT/_V1"
    done
    mkdir -p "$DIR"
    touch "$OWNED_MARK"
    mkdir -p "$DIR"/{run,log,crash,"mon/ceph-$MON_ID","mgr/ceph-$MGR_ID","osd/ceph-$OSD_ID"}
    write_conf "$fsid"
    log "bootstrapping in $DIR (fsid $fsid, ${OSD_SIZE_GB} GiB sparse BlueStore file)"

    # keys: mon. and client.admin (the admin key goes into the mon's initial keyring)
    ceph-authtool --create-keyring "$DIR/mon.keyring" --gen-key -n mon. --cap mon 'allow *' >/dev/null
    ceph-authtool --create-keyring "$ADMIN_KEYRING" --gen-key -n client.admin \
        --cap mon 'allow *' --cap osd 'allow *' --cap mds 'allow *' --cap mgr 'allow *' >/dev/null
    ceph-authtool "$DIR/mon.keyring" --import-keyring "$ADMIN_KEYRING" >/dev/null
    chmod 600 "$DIR/mon.keyring" "$ADMIN_KEYRING"

    # mon
    monmaptool --create --fsid "$fsid" \
        --addv "$MON_ID" "[v2:127.0.0.1:$MON_PORT,v1:127.0.0.1:$MON_PORT_V1]" "$DIR/monmap" >/dev/null
    ceph-mon -c "$CONF" --mkfs -i "$MON_ID" --monmap "$DIR/monmap" --keyring "$DIR/mon.keyring" \
        >>"$DIR/log/ceph-mon.$MON_ID.out" 2>&1 || die "ceph-mon --mkfs failed; see $DIR/log"
    start_daemon mon "$MON_ID"

    # mgr
    ceph_ auth get-or-create "mgr.$MGR_ID" mon 'allow profile mgr' osd 'allow *' mds 'allow *' \
        >"$DIR/mgr/ceph-$MGR_ID/keyring"
    start_daemon mgr "$MGR_ID"

    # osd: register it, give it a key, mkfs (creates the sparse file), start it (it adds
    # itself to the CRUSH map under this host)
    id=$(ceph_ osd new "$osd_uuid")
    [[ $id == "$OSD_ID" ]] || die "expected OSD id $OSD_ID, the mon gave $id"
    ceph-authtool --create-keyring "$DIR/osd/ceph-$OSD_ID/keyring" --gen-key -n "osd.$OSD_ID" >/dev/null
    ceph_ auth add "osd.$OSD_ID" osd 'allow *' mon 'allow profile osd' mgr 'allow profile osd' \
        -i "$DIR/osd/ceph-$OSD_ID/keyring" 2>/dev/null
    log "osd.$OSD_ID mkfs"
    ceph-osd -c "$CONF" -i "$OSD_ID" --mkfs --osd-uuid "$osd_uuid" \
        >>"$DIR/log/ceph-osd.$OSD_ID.out" 2>&1 || die "ceph-osd --mkfs failed; see $DIR/log"
    start_daemon osd "$OSD_ID"
}

# ---------------------------------------------------------------------------- commands

cmd_install() {
    local pkg missing=()
    for pkg in "${PACKAGES[@]}"; do
        [[ $(dpkg-query -W -f='${db:Status-Status}' "$pkg" 2>/dev/null) == installed ]] || missing+=("$pkg")
    done
    if ((${#missing[@]} == 0)); then
        log "packages already installed"
        return 0
    fi
    [[ $(id -u) == 0 ]] || die "installing ${missing[*]} needs root"
    export DEBIAN_FRONTEND=noninteractive
    local apt=(apt-get -q -o DPkg::Lock::Timeout=300)
    log "apt-get update"
    "${apt[@]}" update >&2
    log "apt-get install ${missing[*]}"
    "${apt[@]}" install -y --no-install-recommends "${missing[@]}" >&2
    log "installed"
}

cmd_start() {
    need_binaries
    take_lock
    if ! mkdir -p "$DIR" 2>/dev/null || [[ ! -w $DIR ]]; then
        die "cannot write $DIR: run as root, or set LAMINA_CEPH_DIR"
    fi
    if [[ -f $DONE_MARK ]]; then
        # fast path: already running and ready
        if all_running && clusterpy wait 0 >/dev/null 2>&1; then
            log "already running and healthy in $DIR"
        else
            if all_running; then log "running, waiting for it to be ready"; else log "restarting in $DIR"; fi
            start_daemons
            wait_ready
            # re-create what may have gone missing (a deleted pool, user or keyring); no-op else
            clusterpy setup "$PG_NUM" "$CLIENT" "$CLIENT_KEYRING" "${POOLS[@]}"
        fi
    else
        if [[ -d $DIR && -n $(ls -A "$DIR") ]]; then
            # an earlier bootstrap died half-way: start over, but only in our own directory
            [[ -f $OWNED_MARK ]] || die "$DIR is not empty and was not made by this script"
            log "found an unfinished bootstrap in $DIR: wiping it"
            stop_daemons >/dev/null
            rm -rf -- "$DIR"
        fi
        bootstrap
        log "creating pools ${POOLS[*]} and client.$CLIENT"
        clusterpy setup "$PG_NUM" "$CLIENT" "$CLIENT_KEYRING" "${POOLS[@]}"
        wait_ready
        touch "$DONE_MARK"
    fi
    write_etc
    print_info
}

cmd_stop() {
    local n
    take_lock
    n=$(stop_daemons)
    log "stopped $n daemon(s) of $DIR"
}

cmd_status() {
    local name pid rc=0
    for name in "mon.$MON_ID" "mgr.$MGR_ID" "osd.$OSD_ID"; do
        if pid=$(daemon_pid "$name"); then echo "$name: running (pid $pid)"; else echo "$name: stopped"; rc=1; fi
    done
    if daemon_pid "mon.$MON_ID" >/dev/null; then
        ceph_ -s || rc=1
    else
        echo "cluster in $DIR is not running"
    fi
    return "$rc"
}

cmd_destroy() {
    local n
    take_lock
    if [[ -e $DIR && ! -f $OWNED_MARK ]]; then
        die "$DIR was not made by this script: not deleting it"
    fi
    n=$(stop_daemons 2>/dev/null || echo 0)
    remove_etc
    rm -rf -- "$DIR"
    log "stopped $n daemon(s), removed $DIR"
}

cmd_pybind() {
    local venv=${1:?usage: $0 pybind VENV} py site suffix mod so
    py=$venv/bin/python
    [[ -x $py ]] || die "$py not found: not a virtualenv?"
    site=$("$py" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')
    suffix=$("$py" -c 'import sysconfig; print(sysconfig.get_config_var("EXT_SUFFIX"))')
    # Debian builds these extensions for its own python3 only (3.11 on bookworm). They load in
    # any CPython with the same ABI tag (e.g. a pyenv 3.11); for another version the Cython
    # bindings would have to be built from Ceph's sources against librados-dev/librbd-dev.
    for mod in rados rbd; do
        so=/usr/lib/python3/dist-packages/$mod$suffix
        [[ -f $so ]] || die "$so not found (python3-$mod not installed, or $py's ABI $suffix is not Debian's)"
        ln -sfn "$so" "$site/$mod$suffix"
    done
    "$py" -c 'import rados, rbd; print("rados", rados.__file__); print("rbd", rbd.__file__)'
}

cmd_env() {
    [[ -f $CONF ]] || log "warning: $CONF does not exist yet (run '$0 start')"
    printf 'export CEPH_CONF=%q\n' "$CONF"
    printf 'export LAMINA_CEPH_DIR=%q\n' "$DIR"
    printf 'export LAMINA_CEPH_USER=%q\n' "$CLIENT"
    printf 'export LAMINA_CEPH_KEYRING=%q\n' "$CLIENT_KEYRING"
    printf 'export LAMINA_CEPH_POOL=%q\n' "${POOLS[0]}"
    printf 'export LAMINA_CEPH_BACKUP_POOL=%q\n' "${POOLS[1]}"
}

usage() { sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; }

case ${1:-} in
    install) cmd_install ;;
    start) cmd_start ;;
    stop) cmd_stop ;;
    status) cmd_status ;;
    destroy) cmd_destroy ;;
    pybind) shift; cmd_pybind "$@" ;;
    env) cmd_env ;;
    -h | --help | help) usage ;;
    *) usage >&2; exit 2 ;;
esac
