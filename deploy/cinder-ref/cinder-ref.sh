#!/usr/bin/env bash
# cinder-ref.sh - real OpenStack Cinder 29 (PyPI `cinder`, in its own venv) as the reference
# that `make bench` measures beside Lamina: cinder-api under uWSGI, cinder-scheduler and one
# cinder-volume with the in-tree fake driver (cinder.tests.fake_driver.FakeLoggingVolumeDriver)
# on two back ends, on the machine's RabbitMQ, MariaDB and Lamina's Keystone
# (deploy/keystone/keystone-aio.sh), loopback only.
#
# usage: deploy/cinder-ref/cinder-ref.sh install|start|stop|status|env
#
#   install  create the venv BASE/venv and pip install cinder, uwsgi, PyMySQL, fixtures and
#            python-memcached (versions pinned by constraints.txt beside this script).
#            Idempotent: a no-op (well under a second) when already done.
#   start    write INSTANCE/etc/cinder.conf and uwsgi.ini, `cinder-manage db sync`, start
#            cinder-scheduler, cinder-volume and cinder-api (uWSGI) in the background, each in
#            its own session (pid files in INSTANCE/run), and wait until the API answers.
#            Needs CINDER_REF_DB_URL and CINDER_REF_TRANSPORT_URL (the benchmark makes a fresh
#            database and RabbitMQ vhost for each start), and a running Keystone. When the
#            instance already runs: stops it first (a start is always fresh).
#   stop     TERM every process of the instance (each whole session), wait up to 20 s, KILL
#            what is left. The database and vhost are the caller's to drop.
#   status   exit 0 when the instance's three services run and the API answers.
#   env      the instance's facts as `export NAME=value` lines (API URL, pids, log files).
#
# Environment:
#   CINDER_REF_BASE          base directory (/var/lib/lamina-cinder-ref): the venv lives here
#   CINDER_REF_INSTANCE      the instance's own directory (BASE/instance): config, logs, pids
#   CINDER_REF_DB_URL        SQLAlchemy URL of an existing, empty database (start)
#   CINDER_REF_TRANSPORT_URL oslo.messaging transport URL, e.g. rabbit://guest:guest@127.0.0.1:5672/vh
#   CINDER_REF_PORT          cinder-api's port on 127.0.0.1 (18776)
#   CINDER_REF_API_PROCESSES uWSGI processes of cinder-api (2: one per core here)
#   CINDER_REF_API_THREADS   uWSGI threads per process (8)
#   CINDER_REF_BACKENDS      how many fake back ends the one cinder-volume serves (2)
#   CINDER_REF_HOST          Cinder's `host` (cinder-ref-<random>), unique per start
#   CINDER_REF_PYTHON        interpreter for the venv (python3)
#   CINDER_REF_CONSTRAINTS   pip constraints file, or "none" (constraints.txt here)
#   CINDER_REF_WAIT          seconds to wait for the API to answer (120)
#   KEYSTONE_AIO             Lamina's Keystone script (../keystone/keystone-aio.sh)
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
BASE=${CINDER_REF_BASE:-/var/lib/lamina-cinder-ref}
VENV=$BASE/venv
INSTANCE=${CINDER_REF_INSTANCE:-$BASE/instance}
ETC=$INSTANCE/etc
LOG=$INSTANCE/log
RUN=$INSTANCE/run
HOST=127.0.0.1
PORT=${CINDER_REF_PORT:-18776}
API_PROCESSES=${CINDER_REF_API_PROCESSES:-2}
API_THREADS=${CINDER_REF_API_THREADS:-8}
BACKENDS=${CINDER_REF_BACKENDS:-2}
PYTHON=${CINDER_REF_PYTHON:-python3}
CONSTRAINTS=${CINDER_REF_CONSTRAINTS:-$HERE/constraints.txt}
WAIT_SECONDS=${CINDER_REF_WAIT:-120}
KEYSTONE_AIO=${KEYSTONE_AIO:-$HERE/../keystone/keystone-aio.sh}

CINDER_VERSION=29.0.0
PACKAGES=("cinder==$CINDER_VERSION" uwsgi PyMySQL fixtures python-memcached)
INSTALL_STAMP=$VENV/.lamina-installed
SERVICES=(scheduler volume api)

die() {
    echo "cinder-ref: $*" >&2
    exit 1
}

log() {
    echo "cinder-ref: $*" >&2
}

port_open() {
    timeout 2 bash -c "exec 3<>/dev/tcp/$HOST/$1" 2>/dev/null
}

installed_stamp_value() {
    local c=none
    [[ $CONSTRAINTS != none && -f $CONSTRAINTS ]] && c=$(sha256sum <"$CONSTRAINTS" | cut -c1-16)
    echo "${PACKAGES[*]} constraints=$c"
}

# ---------------------------------------------------------------------------- install

cmd_install() {
    mkdir -p "$BASE"
    if [[ -f $INSTALL_STAMP && $(<"$INSTALL_STAMP") == "$(installed_stamp_value)" ]] &&
        "$VENV/bin/python" -c pass 2>/dev/null; then
        log "venv $VENV already installed"
        return 0
    fi
    local py
    py=$(command -v "$PYTHON") || die "no $PYTHON on PATH (set CINDER_REF_PYTHON)"
    "$py" -c 'import sys; sys.exit(sys.version_info < (3, 10))' ||
        die "$py is older than Python 3.10, which cinder $CINDER_VERSION needs"
    # uWSGI builds from source: it needs a C compiler and Python's headers.
    command -v cc >/dev/null || die "no C compiler (cc) to build uwsgi: apt-get install build-essential"
    log "creating venv $VENV with $("$py" -V 2>&1) and installing cinder $CINDER_VERSION (about 2 minutes)"
    if ! "$VENV/bin/python" -c pass 2>/dev/null; then
        "$py" -m venv --clear "$VENV"
    fi
    local cargs=()
    [[ $CONSTRAINTS != none && -f $CONSTRAINTS ]] && cargs=(-c "$CONSTRAINTS")
    if ! {
        "$VENV/bin/pip" install -q --upgrade pip &&
            "$VENV/bin/pip" install -q "${cargs[@]}" "${PACKAGES[@]}"
    } >"$BASE/pip.log" 2>&1; then
        grep -v '^WARNING: Location' "$BASE/pip.log" | tail -n 30 >&2
        die "pip install failed (full output in $BASE/pip.log)"
    fi
    "$VENV/bin/python" -W ignore -c 'import cinder.tests.fake_driver, pymysql, memcache' ||
        die "the venv $VENV cannot import cinder's fake driver"
    [[ -x $VENV/bin/uwsgi ]] || die "no uwsgi in $VENV"
    installed_stamp_value >"$INSTALL_STAMP"
    log "installed $("$VENV/bin/pip" list 2>/dev/null | awk '$1 == "cinder" {print "cinder " $2}') in $VENV"
}

# ---------------------------------------------------------------------------- start

# keystone_fact NAME: a value of `keystone-aio.sh env`.
keystone_fact() {
    awk -F= -v n="export $1" '$1 == n {print substr($0, length($1) + 2)}' <<<"$KS_ENV"
}

backend_names() {
    local i
    for ((i = 1; i <= BACKENDS; i++)); do
        printf '%s%s' "$([[ $i -gt 1 ]] && echo ,)" "fake$i"
    done
}

render_conf() {
    cat <<EOF
# Written by deploy/cinder-ref/cinder-ref.sh start.
[DEFAULT]
debug = false
use_stderr = false
log_dir = $LOG
# as the benchmark's Lamina: no per-request or per-volume INFO lines, warnings and errors kept
default_log_levels = cinder=WARN,amqp=WARN,amqplib=WARN,kombu=WARN,sqlalchemy=WARN,oslo.messaging=WARN,oslo_messaging=WARN,iso8601=WARN,urllib3=WARN,requests=WARN,keystonemiddleware=WARN,keystoneauth=WARN,routes.middleware=WARN,stevedore=WARN,taskflow=WARN,oslo.cache=WARN,oslo_policy=WARN,oslo_service=WARN,dogpile=WARN,eventlet.wsgi.server=WARN
host = $CINDER_HOST
my_ip = $HOST
state_path = $INSTANCE/state
transport_url = $CINDER_REF_TRANSPORT_URL
auth_strategy = keystone
api_paste_config = $API_PASTE
enabled_backends = $(backend_names)
default_volume_type = __DEFAULT__
# benchmarks make hundreds of volumes in one project: no quota limits (as for Lamina)
quota_volumes = -1
quota_gigabytes = -1
quota_snapshots = -1
quota_backups = -1
quota_backup_gigabytes = -1
quota_groups = -1
# stopping cinder-volume takes graceful_shutdown_timeout (default 60 s)
graceful_shutdown_timeout = 5
# the volume service's stats reach the scheduler at start and then every 10 s
periodic_interval = 10
report_interval = 5
service_down_time = 30
scheduler_driver_init_wait_time = 30
rpc_response_timeout = 60
# RPC requests a service handles at once (oslo.messaging's default 64 green threads): with 64,
# cinder-scheduler alone was seen holding over 100 MariaDB connections here, whatever the pool
# size below, until MariaDB (max_connections 151, shared) refused every new one
executor_thread_pool_size = 10

[database]
connection = $CINDER_REF_DB_URL
# at most 10 connections per process (2 API workers, the scheduler, a volume child per back
# end: 50), kept open: MariaDB's max_connections (151) is shared with everything else on the
# machine, and oslo.db's default overflow (50 per process) opened and closed hundreds of
# connections a minute here, until MariaDB refused them and volumes stayed `creating`
max_pool_size = 10
max_overflow = 0

[oslo_concurrency]
lock_path = $INSTANCE/lock

[oslo_messaging_notifications]
driver = noop

[keystone_authtoken]
www_authenticate_uri = $(keystone_fact LAMINA_KS_WWW_AUTHENTICATE_URI)
auth_url = $(keystone_fact LAMINA_KS_WWW_AUTHENTICATE_URI)
auth_type = password
username = $(keystone_fact LAMINA_KS_SERVICE_USER)
password = $(keystone_fact LAMINA_KS_SERVICE_PASSWORD)
project_name = $(keystone_fact LAMINA_KS_SERVICE_PROJECT)
user_domain_name = $(keystone_fact LAMINA_KS_DOMAIN)
project_domain_name = $(keystone_fact LAMINA_KS_DOMAIN)
memcached_servers = $(keystone_fact LAMINA_KS_MEMCACHED_SERVERS)
EOF
    local i
    for ((i = 1; i <= BACKENDS; i++)); do
        cat <<EOF

[fake$i]
volume_driver = cinder.tests.fake_driver.FakeLoggingVolumeDriver
volume_backend_name = fake$i
# the fake driver reports volume_backend_name "fake" whatever the config says
extra_capabilities = {"volume_backend_name": "fake$i"}
EOF
    done
}

# uWSGI's plain http-socket does no keep-alive: "Connection: close" keeps keystoneauth and
# the benchmark's client from reusing a connection uWSGI has already closed.
render_uwsgi() {
    cat <<EOF
# Written by deploy/cinder-ref/cinder-ref.sh start.
[uwsgi]
http-socket = $HOST:$PORT
module = cinder_ref_wsgi:application
pythonpath = $ETC
pyargv = --config-file $ETC/cinder.conf --log-file $LOG/api.log
processes = $API_PROCESSES
threads = $API_THREADS
enable-threads = true
master = true
lazy-apps = true
die-on-term = true
thunder-lock = true
buffer-size = 65535
listen = 128
add-header = Connection: close
need-app = true
disable-logging = true
logto = $LOG/uwsgi.log
procname-prefix-spaced = cinder-ref-api
pidfile = $RUN/api.uwsgi.pid
EOF
}

# cinder.wsgi.wsgi turns DeprecationWarnings on ("once"; in fact ~20 lines per request to
# uwsgi.log here, several MB a minute): the benchmark's Lamina logs no per-request lines, so
# neither does its Cinder. Otherwise cinder.wsgi.api's application, unchanged.
render_wsgi_module() {
    cat <<EOF
# Written by deploy/cinder-ref/cinder-ref.sh start.
import warnings

from cinder.wsgi import api

warnings.simplefilter("ignore", DeprecationWarning)
application = api.application
EOF
}

# service_pid NAME: the pid of a running service of this instance (its session leader).
service_pid() {
    local file=$RUN/$1.pid pid
    [[ -s $file ]] || return 1
    pid=$(<"$file")
    [[ $pid =~ ^[0-9]+$ ]] && kill -0 "$pid" 2>/dev/null || return 1
    # a Python service's command line names the venv; uWSGI's master renames itself
    # (procname-prefix-spaced) but its executable is the venv's uwsgi
    tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | grep -q "$VENV/bin/" ||
        [[ $(readlink "/proc/$pid/exe" 2>/dev/null) == "$VENV/bin/uwsgi" ]] || return 1
    echo "$pid"
}

# launch NAME ARGV...: in its own session, in the background. PYTHONWARNINGS: Cinder's
# DeprecationWarnings (several per request) would cost as much as logging.
launch() {
    local name=$1
    shift
    : >>"$LOG/$name.out"
    PYTHONWARNINGS=ignore setsid "$@" </dev/null >>"$LOG/$name.out" 2>&1 &
    echo $! >"$RUN/$name.pid"
}

api_answers() {
    local code
    code=$(curl -s -o /dev/null -w '%{http_code}' --max-time 5 "http://$HOST:$PORT/" 2>/dev/null) || return 1
    [[ $code == 200 || $code == 300 ]]
}

cmd_start() {
    [[ -x $VENV/bin/cinder-manage && -f $INSTALL_STAMP ]] || die "no Cinder venv in $VENV: run '$0 install' first"
    [[ -n ${CINDER_REF_DB_URL:-} ]] || die "CINDER_REF_DB_URL is not set (an empty database)"
    [[ -n ${CINDER_REF_TRANSPORT_URL:-} ]] || die "CINDER_REF_TRANSPORT_URL is not set"
    command -v curl >/dev/null || die "curl is missing"
    bash "$KEYSTONE_AIO" status >/dev/null || die "Keystone is not running ($KEYSTONE_AIO start)"
    KS_ENV=$(bash "$KEYSTONE_AIO" env)
    cmd_stop quiet
    port_open "$PORT" && die "port $HOST:$PORT is taken"
    CINDER_HOST=${CINDER_REF_HOST:-cinder-ref-$(head -c 3 /dev/urandom | od -An -tx1 | tr -d ' \n')}
    API_PASTE=$VENV/etc/cinder/api-paste.ini
    [[ -f $API_PASTE ]] || API_PASTE=$(find "$VENV" -name api-paste.ini -path '*cinder*' | head -n 1)
    [[ -f $API_PASTE ]] || die "no cinder api-paste.ini in $VENV"
    rm -rf "$ETC" "$RUN" "$INSTANCE/state" "$INSTANCE/lock"
    mkdir -p "$ETC" "$LOG" "$RUN" "$INSTANCE/state" "$INSTANCE/lock"
    render_conf >"$ETC/cinder.conf"
    render_uwsgi >"$ETC/uwsgi.ini"
    render_wsgi_module >"$ETC/cinder_ref_wsgi.py"
    log "cinder-manage db sync"
    "$VENV/bin/cinder-manage" --config-file "$ETC/cinder.conf" db sync \
        </dev/null >"$LOG/db-sync.log" 2>&1 || {
        tail -n 30 "$LOG/db-sync.log" >&2
        die "cinder-manage db sync failed (see $LOG/db-sync.log)"
    }
    log "starting cinder-scheduler, cinder-volume ($(backend_names)), cinder-api on $HOST:$PORT"
    launch scheduler "$VENV/bin/cinder-scheduler" --config-file "$ETC/cinder.conf" --log-file "$LOG/scheduler.log"
    launch volume "$VENV/bin/cinder-volume" --config-file "$ETC/cinder.conf" --log-file "$LOG/volume.log"
    (cd "$ETC" && PYTHONWARNINGS=ignore exec setsid "$VENV/bin/uwsgi" --ini "$ETC/uwsgi.ini" \
        </dev/null >>"$LOG/api.out" 2>&1) &
    echo $! >"$RUN/api.pid"
    local deadline=$((SECONDS + WAIT_SECONDS)) name
    until api_answers; do
        for name in "${SERVICES[@]}"; do
            if ! service_pid "$name" >/dev/null; then
                tail -n 30 "$LOG/$name.out" "$LOG/$name.log" "$LOG/uwsgi.log" 2>/dev/null >&2 || true
                cmd_stop quiet
                die "cinder-$name exited at start (logs in $LOG)"
            fi
        done
        if ((SECONDS >= deadline)); then
            tail -n 30 "$LOG/uwsgi.log" >&2 2>/dev/null || true
            cmd_stop quiet
            die "cinder-api did not answer http://$HOST:$PORT/ within ${WAIT_SECONDS}s (logs in $LOG)"
        fi
        sleep 0.3
    done
    log "Cinder answers on http://$HOST:$PORT/v3 (host $CINDER_HOST, logs in $LOG)"
}

# ---------------------------------------------------------------------------- stop

cmd_stop() {
    local quiet=${1:-} name pid pids=() i
    for name in "${SERVICES[@]}"; do
        pid=$(service_pid "$name") || { rm -f "$RUN/$name.pid"; continue; }
        pids+=("$pid")
        # each service was started in its own session: signal the whole group (uWSGI's
        # workers, cinder-volume's per-back-end children)
        kill -TERM -- "-$pid" 2>/dev/null || kill -TERM "$pid" 2>/dev/null || true
    done
    ((${#pids[@]})) || { [[ -n $quiet ]] || log "nothing running"; return 0; }
    for ((i = 0; i < 200; i++)); do
        local alive=0
        for pid in "${pids[@]}"; do
            pgrep -s "$pid" >/dev/null 2>&1 && alive=1
        done
        ((alive)) || break
        sleep 0.1
    done
    for pid in "${pids[@]}"; do
        if pgrep -s "$pid" >/dev/null 2>&1; then
            log "session $pid did not stop on TERM within 20 s; killing it"
            pkill -KILL -s "$pid" 2>/dev/null || true
        fi
    done
    for name in "${SERVICES[@]}"; do
        rm -f "$RUN/$name.pid"
    done
    rm -f "$RUN/api.uwsgi.pid"
    log "stopped Cinder (sessions ${pids[*]})"
}

cmd_status() {
    local rc=0 name pid
    for name in "${SERVICES[@]}"; do
        if pid=$(service_pid "$name"); then
            echo "cinder-$name: running (session $pid)"
        else
            echo "cinder-$name: down"
            rc=1
        fi
    done
    if api_answers; then
        echo "cinder-api: answers on http://$HOST:$PORT/"
    else
        echo "cinder-api: http://$HOST:$PORT/ does not answer"
        rc=1
    fi
    return $rc
}

cmd_env() {
    local name pid
    cat <<EOF
export CINDER_REF_URL=http://$HOST:$PORT
export CINDER_REF_VENV=$VENV
export CINDER_REF_CONF=$ETC/cinder.conf
export CINDER_REF_LOG_DIR=$LOG
export CINDER_REF_BACKENDS=$BACKENDS
EOF
    for name in "${SERVICES[@]}"; do
        pid=$(service_pid "$name") || pid=
        echo "export CINDER_REF_PID_${name^^}=$pid"
    done
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
