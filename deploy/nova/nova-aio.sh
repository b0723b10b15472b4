#!/usr/bin/env bash
# nova-aio.sh - a real, loopback-only OpenStack Nova (PyPI `nova`, fake virt driver) with
# Placement (PyPI `openstack-placement`), each in its own venv, as the attach client of
# Lamina's tests (tests/integration/test_nova.py). Needs the Keystone of
# deploy/keystone/keystone-aio.sh, MariaDB on 127.0.0.1:3306 (root, no password) and
# RabbitMQ on 127.0.0.1:5672 (guest), all started by `make services`.
#
# usage: deploy/nova/nova-aio.sh install|start|stop|status|env
#
#   install  create DIR/nova-venv and DIR/placement-venv and pip install nova / placement
#            (versions pinned by constraints.txt beside this script). Idempotent: a no-op
#            (well under a second) when already done. Starts nothing.
#   start    write the config files, create the databases and the RabbitMQ vhost, run the
#            schema and cells v2 set-up (first time only), register the nova and placement
#            users, services and endpoints in Keystone, start placement-api, the network
#            stub, nova-api, nova-conductor, nova-scheduler and nova-compute, map the compute
#            host into cell1 and wait until its hypervisor is up.
#   stop     stop everything start started (TERM, then KILL after 10 s).
#   status   print what runs; exit 1 when something is down.
#   env      print `export` lines (LAMINA_NOVA_*) for the tests.
#
# Environment (all optional):
#   LAMINA_NOVA_DIR   base dir: venvs, etc/, log/, run/, state/ (/var/lib/lamina-nova)
#   LAMINA_NOVA_PORT, LAMINA_PLACEMENT_PORT, LAMINA_NOVA_NETWORK_PORT   (8774, 8778, 9696)
#   LAMINA_NOVA_WAIT  seconds to wait for each service (120)
#   LAMINA_NOVA_CONSTRAINTS  pip constraints file, or "none" (constraints.txt here)
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
KEYSTONE_AIO=$HERE/../keystone/keystone-aio.sh
DIR=${LAMINA_NOVA_DIR:-/var/lib/lamina-nova}
NOVA_VENV=$DIR/nova-venv
PL_VENV=$DIR/placement-venv
ETC=$DIR/etc
LOG=$DIR/log
RUN=$DIR/run
STATE=$DIR/state
HOST=127.0.0.1
NOVA_PORT=${LAMINA_NOVA_PORT:-8774}
PL_PORT=${LAMINA_PLACEMENT_PORT:-8778}
NET_PORT=${LAMINA_NOVA_NETWORK_PORT:-9696}
WAIT_SECONDS=${LAMINA_NOVA_WAIT:-120}
CONSTRAINTS=${LAMINA_NOVA_CONSTRAINTS:-$HERE/constraints.txt}
NOVA_VERSION=34.0.0
PLACEMENT_VERSION=16.0.0
# fixtures: the fake virt driver imports nova's test helpers; python-memcached: keystonemiddleware
# with memcached_servers answers every request 500 without it
NOVA_PACKAGES=("nova==$NOVA_VERSION" fixtures python-memcached PyMySQL gunicorn)
PL_PACKAGES=("openstack-placement==$PLACEMENT_VERSION" python-memcached PyMySQL gunicorn)
COMPUTE_HOST=lamina-nova-compute
VHOST=lamina-nova
PASSWORD=lamina-pass
DB=mysql+pymysql://root@127.0.0.1:3306
NOVA_URL=http://$HOST:$NOVA_PORT/v2.1
PL_URL=http://$HOST:$PL_PORT
SERVICES=(placement network nova-api nova-conductor nova-scheduler nova-compute)

log() { echo "nova-aio: $*" >&2; }
die() { echo "nova-aio: $*" >&2; exit 1; }

stamp_value() {  # venv packages constraints
    local c=none
    [[ $CONSTRAINTS != none ]] && c=$(sha256sum <"$CONSTRAINTS" | cut -c1-16)
    echo "$2 constraints=$c"
}

install_venv() {  # venv import packages...
    local venv=$1 module=$2
    shift 2
    local want
    want=$(stamp_value "$venv" "$*")
    if [[ -f $venv/.lamina-installed && $(<"$venv/.lamina-installed") == "$want" ]] &&
        "$venv/bin/python" -c pass 2>/dev/null; then
        log "$venv already installed"
        return 0
    fi
    log "installing $1 into $venv"
    "$venv/bin/python" -c pass 2>/dev/null || python3 -m venv --clear "$venv"
    local cargs=()
    [[ $CONSTRAINTS != none ]] && cargs=(-c "$CONSTRAINTS")
    if ! { "$venv/bin/pip" install -q --upgrade pip &&
        "$venv/bin/pip" install -q "${cargs[@]}" "$@"; } >"$LOG/pip-$(basename "$venv").log" 2>&1; then
        grep -v '^WARNING: Location' "$LOG/pip-$(basename "$venv").log" | tail -n 30 >&2
        die "pip install into $venv failed"
    fi
    "$venv/bin/python" -W ignore -c "import $module" || die "$venv cannot import $module"
    echo "$want" >"$venv/.lamina-installed"
}

cmd_install() {
    mkdir -p "$DIR" "$LOG"
    command -v curl >/dev/null || die "curl is missing (apt-get install curl)"
    install_venv "$PL_VENV" "placement.wsgi, pymysql, memcache" "${PL_PACKAGES[@]}"
    install_venv "$NOVA_VENV" "nova.virt.fake, pymysql, memcache, fixtures" \
        "${NOVA_PACKAGES[@]}"
}

installed() {
    [[ -f $NOVA_VENV/.lamina-installed && -f $PL_VENV/.lamina-installed ]]
}

# ---------------------------------------------------------------------------- config

ks_env() {
    bash "$KEYSTONE_AIO" status >/dev/null 2>&1 ||
        die "Keystone does not answer: bash deploy/keystone/keystone-aio.sh start (make services)"
    eval "$(bash "$KEYSTONE_AIO" env)"
}

auth_section() {  # section user
    cat <<EOF
[$1]
auth_type = password
auth_url = $LAMINA_KS_AUTH_URL
username = $2
password = $PASSWORD
project_name = service
user_domain_name = Default
project_domain_name = Default
region_name = RegionOne
EOF
}

authtoken_section() {  # user
    auth_section keystone_authtoken "$1"
    cat <<EOF
www_authenticate_uri = $LAMINA_KS_WWW_AUTHENTICATE_URI
memcached_servers = $LAMINA_KS_MEMCACHED_SERVERS
service_token_roles_required = true
EOF
}

write_configs() {
    mkdir -p "$ETC/nova" "$ETC/placement" "$LOG" "$RUN" "$STATE/instances" "$STATE/lock"
    {
        cat <<EOF
# Written by deploy/nova/nova-aio.sh start.
[DEFAULT]
debug = false
log_dir = $LOG
log_file = placement.log
[placement_database]
connection = $DB/lamina_placement?charset=utf8
[api]
auth_strategy = keystone
EOF
        authtoken_section placement
    } >"$ETC/placement/placement.conf"
    cat >"$ETC/placement/gunicorn.conf.py" <<EOF
# placement parses no command line of its own here, but gunicorn's would confuse it
import os
os.environ["OS_PLACEMENT_CONFIG_DIR"] = "$ETC/placement"
wsgi_app = "placement.wsgi.api:application"
bind = "$HOST:$PL_PORT"
workers = 1
timeout = 120
accesslog = "$LOG/placement-access.log"
errorlog = "$LOG/placement-gunicorn.log"
EOF
    cp "$NOVA_VENV/etc/nova/api-paste.ini" "$ETC/nova/api-paste.ini"
    {
        cat <<EOF
# Written by deploy/nova/nova-aio.sh start.
[DEFAULT]
debug = false
host = $COMPUTE_HOST
my_ip = $HOST
state_path = $STATE
instances_path = $STATE/instances
log_dir = $LOG
transport_url = rabbit://guest:guest@$HOST:5672/$VHOST
compute_driver = fake.FakeDriverWithoutFakeNodes
enabled_apis = osapi_compute
osapi_compute_listen = $HOST
# images come from deploy/glance (below); the network endpoint is the stub
[api]
auth_strategy = keystone
[wsgi]
api_paste_config = $ETC/nova/api-paste.ini
[api_database]
connection = $DB/lamina_nova_api?charset=utf8
[database]
connection = $DB/lamina_nova?charset=utf8
[conductor]
workers = 1
[scheduler]
workers = 1
discover_hosts_in_cells_interval = -1
[oslo_concurrency]
lock_path = $STATE/lock
[oslo_messaging_notifications]
driver = noop
[vnc]
enabled = false
# deploy/glance/glance-aio.sh listens there (Tempest's servers boot from its image); even a
# boot from a volume needs it: a build's notification payload names the image service's URL
[glance]
endpoint_override = http://$HOST:9292
[neutron]
endpoint_override = http://$HOST:$NET_PORT
auth_type = none
[cinder]
catalog_info = block-storage::publicURL
# the test fixture registers Lamina in this region only (deploy/nova/nova_keystone.py volume)
os_region_name = lamina-nova
EOF
        auth_section cinder nova | sed 1d
        echo
        auth_section placement placement
        echo
        auth_section service_user nova
        echo "send_service_user_token = true"
        echo
        authtoken_section nova
    } >"$ETC/nova/nova.conf"
    cat >"$ETC/nova/gunicorn.conf.py" <<EOF
# nova's WSGI app parses sys.argv with oslo.config: gunicorn gets no argument, only this file
import os
os.environ["OS_NOVA_CONFIG_DIR"] = "$ETC/nova"
# the first file is the paste config
os.environ["OS_NOVA_CONFIG_FILES"] = "api-paste.ini;nova.conf"
wsgi_app = "nova.wsgi.osapi_compute:application"
bind = "$HOST:$NOVA_PORT"
workers = 1
timeout = 120
accesslog = "$LOG/nova-api-access.log"
errorlog = "$LOG/nova-api-gunicorn.log"
EOF
}

# ---------------------------------------------------------------------------- set-up

setup_backing() {
    "$NOVA_VENV/bin/python" - <<'EOF' || die "cannot create the databases on MariaDB 127.0.0.1:3306 (deploy/dev-services.sh start mariadb)"
import pymysql
c = pymysql.connect(host="127.0.0.1", port=3306, user="root", connect_timeout=10)
for name in ("lamina_placement", "lamina_nova_api", "lamina_nova", "lamina_nova_cell0"):
    c.cursor().execute("CREATE DATABASE IF NOT EXISTS %s CHARACTER SET utf8" % name)
c.close()
EOF
    if ! rabbitmqctl -q list_vhosts 2>/dev/null | grep -qx "$VHOST"; then
        rabbitmqctl -q add_vhost "$VHOST" >/dev/null
        rabbitmqctl -q set_permissions -p "$VHOST" guest '.*' '.*' '.*' >/dev/null
    fi
}

nova_manage() {
    "$NOVA_VENV/bin/nova-manage" --config-file "$ETC/nova/nova.conf" "$@" \
        </dev/null >>"$LOG/nova-manage.log" 2>&1
}

# setup_databases: schemas and cells v2, once (stamp DIR/.db-setup): ~40 s the first time.
setup_databases() {
    local stamp="$DB placement=$PLACEMENT_VERSION nova=$NOVA_VERSION"
    [[ -f $DIR/.db-setup && $(<"$DIR/.db-setup") == "$stamp" ]] && return 0
    log "placement-manage db sync; nova-manage api_db sync, cells v2, db sync"
    "$PL_VENV/bin/placement-manage" --config-file "$ETC/placement/placement.conf" db sync \
        </dev/null >>"$LOG/placement-manage.log" 2>&1 ||
        die "placement-manage db sync failed ($LOG/placement-manage.log)"
    nova_manage api_db sync || die "nova-manage api_db sync failed ($LOG/nova-manage.log)"
    nova_manage cell_v2 map_cell0 --database_connection "$DB/lamina_nova_cell0?charset=utf8" ||
        die "nova-manage cell_v2 map_cell0 failed ($LOG/nova-manage.log)"
    if ! "$NOVA_VENV/bin/nova-manage" --config-file "$ETC/nova/nova.conf" cell_v2 list_cells \
        2>/dev/null | grep -q ' cell1 '; then
        nova_manage cell_v2 create_cell --name cell1 ||
            die "nova-manage cell_v2 create_cell failed ($LOG/nova-manage.log)"
    fi
    nova_manage db sync || die "nova-manage db sync failed ($LOG/nova-manage.log)"
    echo "$stamp" >"$DIR/.db-setup"
}

# ---------------------------------------------------------------------------- processes

# pid_alive NAME: the process of RUN/NAME.pid runs and is one of ours (its command line
# or working directory names DIR), not an unrelated process that got the pid later.
pid_alive() {
    local pid
    [[ -s $RUN/$1.pid ]] || return 1
    pid=$(<"$RUN/$1.pid")
    [[ $pid =~ ^[0-9]+$ ]] && kill -0 "$pid" 2>/dev/null || return 1
    # gunicorn renames its processes ("gunicorn: master"): their working directory tells
    local seen
    seen="$(tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null) $(readlink "/proc/$pid/cwd" 2>/dev/null)"
    [[ $seen == *"$DIR"* || $seen == *"$HERE"* ]]
}

launch() {  # name cwd argv...
    local name=$1 cwd=$2
    shift 2
    pid_alive "$name" && return 0
    (cd "$cwd" && exec setsid "$@" </dev/null >>"$LOG/$name.out" 2>&1) &
    echo $! >"$RUN/$name.pid"
}

wait_for() {  # description command...
    local what=$1 deadline=$((SECONDS + WAIT_SECONDS))
    shift
    until "$@" >/dev/null 2>&1; do
        ((SECONDS < deadline)) || die "$what not ready in ${WAIT_SECONDS}s (logs in $LOG)"
        sleep 0.2
    done
}

answers() {  # url [service whose death ends the wait]
    if [[ -n ${2:-} ]] && ! pid_alive "$2"; then
        tail -n 20 "$LOG/$2.out" >&2
        die "$2 exited (logs in $LOG)"
    fi
    curl -fsS --max-time 5 -o /dev/null "$1"
}

hypervisor_up() {
    "$NOVA_VENV/bin/python" - "$LAMINA_KS_AUTH_URL" "$NOVA_URL" "$COMPUTE_HOST" <<'EOF'
import json, sys, urllib.request
auth_url, nova_url, host = sys.argv[1:]
body = {"auth": {"identity": {"methods": ["password"], "password": {"user": {
    "name": "nova", "domain": {"id": "default"}, "password": "lamina-pass"}}},
    "scope": {"project": {"name": "service", "domain": {"id": "default"}}}}}
req = urllib.request.Request(auth_url + "/auth/tokens", json.dumps(body).encode(),
                             {"Content-Type": "application/json"})
token = urllib.request.urlopen(req, timeout=10).headers["X-Subject-Token"]
req = urllib.request.Request(nova_url + "/os-hypervisors/detail", headers={
    "X-Auth-Token": token, "OpenStack-API-Version": "compute 2.53"})
found = json.load(urllib.request.urlopen(req, timeout=10))["hypervisors"]
sys.exit(0 if any(h["state"] == "up" and h["service"]["host"] == host for h in found) else 1)
EOF
}

host_mapped() {
    nova_manage cell_v2 discover_hosts &&
        "$NOVA_VENV/bin/nova-manage" --config-file "$ETC/nova/nova.conf" cell_v2 list_hosts \
            2>/dev/null | grep -q " $COMPUTE_HOST "
}

cmd_start() {
    installed || die "Nova is not installed: bash deploy/nova/nova-aio.sh install (make services)"
    ks_env
    write_configs
    setup_backing
    setup_databases
    "$NOVA_VENV/bin/python" "$HERE/nova_keystone.py" "$LAMINA_KS_AUTH_URL" \
        "$LAMINA_KS_ADMIN_PASSWORD" services "$NOVA_URL" "$PL_URL"
    local nova_bin=$NOVA_VENV/bin
    launch placement "$ETC/placement" "$PL_VENV/bin/gunicorn"
    launch network "$DIR" "$NOVA_VENV/bin/python" "$HERE/network_stub.py" "$NET_PORT"
    launch nova-api "$ETC/nova" "$nova_bin/gunicorn"
    launch nova-conductor "$DIR" "$nova_bin/nova-conductor" --config-file "$ETC/nova/nova.conf"
    launch nova-scheduler "$DIR" "$nova_bin/nova-scheduler" --config-file "$ETC/nova/nova.conf"
    wait_for placement answers "$PL_URL/" placement
    launch nova-compute "$DIR" "$nova_bin/nova-compute" --config-file "$ETC/nova/nova.conf"
    wait_for "network stub" answers "http://$HOST:$NET_PORT/v2.0/ports" network
    wait_for nova-api answers "$NOVA_URL/" nova-api
    wait_for "the compute host in cell1" host_mapped
    wait_for "hypervisor $COMPUTE_HOST" hypervisor_up
    log "Nova up: $NOVA_URL (placement $PL_URL)"
}

# cmd_stop: TERM every service's process group at once (waiting for each in turn took 25 s:
# nova-compute and the oslo.service masters shut down gracefully), KILL what is left after 10 s.
cmd_stop() {
    local name pid n left
    local -A pids=()
    for name in "${SERVICES[@]}"; do
        if pid_alive "$name"; then
            pid=$(<"$RUN/$name.pid")
            pids[$name]=$pid
            kill -TERM -- "-$pid" 2>/dev/null || kill -TERM "$pid" 2>/dev/null || true
        fi
        rm -f "$RUN/$name.pid"
    done
    for ((n = 0; n < 100; n++)); do
        left=0
        for pid in "${pids[@]}"; do
            kill -0 "$pid" 2>/dev/null && left=1
        done
        ((left)) || break
        sleep 0.1
    done
    for name in "${!pids[@]}"; do
        pid=${pids[$name]}
        if kill -0 "$pid" 2>/dev/null; then
            log "$name (pid $pid) did not stop on TERM; killing it"
            kill -KILL -- "-$pid" 2>/dev/null || kill -KILL "$pid" 2>/dev/null || true
        fi
        log "stopped $name (pid $pid)"
    done
}

cmd_status() {
    local name rc=0
    for name in "${SERVICES[@]}"; do
        if pid_alive "$name"; then
            echo "$name: up (pid $(<"$RUN/$name.pid"))"
        else
            echo "$name: down"
            rc=1
        fi
    done
    return $rc
}

cmd_env() {
    cat <<EOF
export LAMINA_NOVA_URL=$NOVA_URL
export LAMINA_NOVA_PLACEMENT_URL=$PL_URL
export LAMINA_NOVA_COMPUTE_HOST=$COMPUTE_HOST
export LAMINA_NOVA_LOG_DIR=$LOG
export LAMINA_NOVA_KEYSTONE_HELPER=$HERE/nova_keystone.py
export LAMINA_NOVA_PYTHON=$NOVA_VENV/bin/python
export LAMINA_NOVA_INSTALLED=$(installed && echo 1 || echo 0)
EOF
}

case ${1:-} in
    install) cmd_install ;;
    start) cmd_start ;;
    stop) cmd_stop ;;
    status) cmd_status ;;
    env) cmd_env ;;
    *)
        sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//' >&2
        exit 2 ;;
esac
