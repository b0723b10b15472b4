#!/usr/bin/env bash
# keystone-aio.sh - a real, loopback-only Keystone (PyPI `keystone`, in its own venv) for
# Lamina's multi-tenancy tests, with memcached (Debian) as its cache.
#
# usage: deploy/keystone/keystone-aio.sh install|start|stop|restart|status|env|seed
#
#   install  create the venv DIR/venv and pip install keystone, gunicorn, pymemcache, PyMySQL
#            (versions pinned by constraints.txt beside this script); apt-get install memcached
#            (and curl) when missing. Idempotent: a no-op (well under a second) when already done.
#   start    when Keystone answers GET /v3 on 127.0.0.1:PORT and was started with the same
#            keystone.conf: nothing. Otherwise write DIR/etc/keystone.conf, set up the database,
#            fernet and credential keys and `keystone-manage bootstrap` (first time only),
#            start memcached (when 127.0.0.1:MEMCACHED_PORT is closed) and gunicorn serving
#            keystone.wsgi.api:application on 127.0.0.1:PORT in the background, wait for
#            GET /v3, then create (idempotently) the projects, users and roles below.
#   stop     stop the Keystone server, and memcached if this script started it.
#   restart  stop, then start.
#   status   print what runs; exit 1 when Keystone does not answer.
#   env      print `export` lines: OS_AUTH_URL and the LAMINA_KS_* facts (users, projects,
#            passwords, ids) for the tests: eval "$(deploy/keystone/keystone-aio.sh env)".
#   seed     create the projects, users and roles again in a running Keystone (start does it
#            when it starts Keystone, not when Keystone already runs).
#
# What `start` creates (domain Default; every password but admin's is lamina-pass):
#   admin / lamina-admin   admin on project admin and on the system (keystone-manage bootstrap)
#   alice                  member of alpha           bob     member of beta
#   carol                  reader of alpha           dave    admin of alpha (a project admin)
#   lamina                 admin and service of project service (keystonemiddleware's
#                          service credentials)
#   roles admin > manager > member > reader (implied: a token lists the implied ones too) and
#   service, all made by keystone 30's bootstrap; region RegionOne; the identity endpoint
#   http://127.0.0.1:PORT/v3 (public and internal). No Lamina endpoint in the catalog.
#
# Environment (all optional):
#   LAMINA_KEYSTONE_DIR              base dir: venv/, etc/, log/, run/, keys, sqlite db
#                                    (/var/lib/lamina-keystone)
#   LAMINA_KEYSTONE_PORT             Keystone's port on 127.0.0.1 (5000)
#   LAMINA_KEYSTONE_MEMCACHED_PORT   memcached's port on 127.0.0.1 (11211)
#   LAMINA_KEYSTONE_DB               sqlite (default: DIR/keystone.db, one worker) or mysql
#                                    (MariaDB database keystone_lamina on 127.0.0.1:3306 as root)
#   LAMINA_KEYSTONE_DB_URL           SQLAlchemy URL overriding the above
#   LAMINA_KEYSTONE_WORKERS          gunicorn worker processes (1 for sqlite, 2 for mysql)
#   LAMINA_KEYSTONE_TOKEN_EXPIRATION token lifetime in seconds (3600)
#   LAMINA_KEYSTONE_HASH_ROUNDS      bcrypt rounds for new passwords (4: fast token issue)
#   LAMINA_KEYSTONE_PYTHON           interpreter for the venv (python3)
#   LAMINA_KEYSTONE_CONSTRAINTS      pip constraints file, or "none" (constraints.txt here)
#   LAMINA_KEYSTONE_WAIT             seconds to wait for Keystone to answer (90)
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
KS_DIR=${LAMINA_KEYSTONE_DIR:-/var/lib/lamina-keystone}
VENV=$KS_DIR/venv
ETC=$KS_DIR/etc
LOG=$KS_DIR/log
RUN=$KS_DIR/run
HOST=127.0.0.1
PORT=${LAMINA_KEYSTONE_PORT:-5000}
MC_PORT=${LAMINA_KEYSTONE_MEMCACHED_PORT:-11211}
DB_KIND=${LAMINA_KEYSTONE_DB:-sqlite}
TOKEN_EXPIRATION=${LAMINA_KEYSTONE_TOKEN_EXPIRATION:-3600}
HASH_ROUNDS=${LAMINA_KEYSTONE_HASH_ROUNDS:-4}
PYTHON=${LAMINA_KEYSTONE_PYTHON:-python3}
CONSTRAINTS=${LAMINA_KEYSTONE_CONSTRAINTS:-$HERE/constraints.txt}
WAIT_SECONDS=${LAMINA_KEYSTONE_WAIT:-90}

KEYSTONE_VERSION=30.0.0
PACKAGES=("keystone==$KEYSTONE_VERSION" gunicorn pymemcache PyMySQL)
AUTH_URL=http://$HOST:$PORT/v3
ADMIN_PASSWORD=lamina-admin
USER_PASSWORD=lamina-pass
REGION=RegionOne

case $DB_KIND in
    sqlite)
        DB_URL=${LAMINA_KEYSTONE_DB_URL:-sqlite:///$KS_DIR/keystone.db}
        WORKERS=${LAMINA_KEYSTONE_WORKERS:-1} ;;
    mysql)
        DB_URL=${LAMINA_KEYSTONE_DB_URL:-mysql+pymysql://root@127.0.0.1:3306/keystone_lamina?charset=utf8mb4}
        WORKERS=${LAMINA_KEYSTONE_WORKERS:-2} ;;
    *)
        echo "LAMINA_KEYSTONE_DB must be sqlite or mysql, not '$DB_KIND'" >&2
        exit 2 ;;
esac

KS_PIDFILE=$RUN/keystone.pid
MC_PIDFILE=$RUN/memcached.pid
SETUP_STAMP=$KS_DIR/.bootstrapped
INSTALL_STAMP=$VENV/.lamina-installed
SEED_ENV=$KS_DIR/ids.env
export DEBIAN_FRONTEND=noninteractive

# ---------------------------------------------------------------------------- helpers

die() {
    echo "keystone-aio: $*" >&2
    exit 1
}

log() {
    echo "keystone-aio: $*" >&2
}

port_open() {
    timeout 2 bash -c "exec 3<>/dev/tcp/$HOST/$1" 2>/dev/null
}

# keystone_answers: GET /v3 gives Keystone's version document.
keystone_answers() {
    curl -fsS --max-time 5 "$AUTH_URL" 2>/dev/null | grep -q '"id": *"v3'
}

# pid_alive PIDFILE: the process in PIDFILE runs and is ours (gunicorn of this venv, or
# memcached), not an unrelated process that got the pid after a reboot.
pid_alive() {
    local pid cmdline
    [[ -s $1 ]] || return 1
    pid=$(<"$1")
    [[ $pid =~ ^[0-9]+$ ]] && kill -0 "$pid" 2>/dev/null || return 1
    cmdline=$(tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null) || return 1
    case $1 in
        "$KS_PIDFILE") [[ $cmdline == *"$VENV/bin/gunicorn"* ]] ;;
        # (right after the fork it is still `setsid memcached ...`: not exec'd yet)
        "$MC_PIDFILE") [[ $cmdline == memcached* || $cmdline == "setsid memcached"* ]] ;;
        *) return 0 ;;
    esac
}

# stop_pid PIDFILE NAME: TERM the process, wait up to 15 s, then KILL it.
stop_pid() {
    local pidfile=$1 name=$2 pid i
    if ! pid_alive "$pidfile"; then
        rm -f "$pidfile"
        return 0
    fi
    pid=$(<"$pidfile")
    kill -TERM "$pid" 2>/dev/null || true
    for ((i = 0; i < 150; i++)); do
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.1
    done
    if kill -0 "$pid" 2>/dev/null; then
        log "$name (pid $pid) did not stop on TERM; killing it"
        kill -KILL "$pid" 2>/dev/null || true
    fi
    rm -f "$pidfile"
    log "stopped $name (pid $pid)"
}

installed_stamp_value() {
    local c=none
    [[ $CONSTRAINTS != none ]] && c=$(sha256sum <"$CONSTRAINTS" | cut -c1-16)
    echo "${PACKAGES[*]} constraints=$c"
}

# ---------------------------------------------------------------------------- install

# install_debian_packages: memcached, and curl (start's health check), when missing.
install_debian_packages() {
    local missing=() cmd
    for cmd in memcached curl; do
        command -v "$cmd" >/dev/null || missing+=("$cmd")
    done
    ((${#missing[@]})) || return 0
    [[ $EUID -eq 0 ]] || die "${missing[*]} missing; run install as root (apt-get install ${missing[*]})"
    log "installing ${missing[*]} from Debian"
    if ! apt-get install -y -q "${missing[@]}" >"$LOG/apt.log" 2>&1; then
        apt-get update -q >>"$LOG/apt.log" 2>&1 || true
        apt-get install -y -q "${missing[@]}" >>"$LOG/apt.log" 2>&1 || {
            tail -n 20 "$LOG/apt.log" >&2
            die "apt-get install ${missing[*]} failed"
        }
    fi
}

cmd_install() {
    mkdir -p "$KS_DIR" "$LOG"
    install_debian_packages
    if [[ -f $INSTALL_STAMP && $(<"$INSTALL_STAMP") == "$(installed_stamp_value)" ]] &&
        "$VENV/bin/python" -c pass 2>/dev/null; then
        log "venv $VENV already installed"
        return 0
    fi
    local py
    py=$(command -v "$PYTHON") || die "no $PYTHON on PATH (set LAMINA_KEYSTONE_PYTHON)"
    "$py" -c 'import sys; sys.exit(sys.version_info < (3, 10))' ||
        die "$py is older than Python 3.10, which keystone $KEYSTONE_VERSION needs"
    log "creating venv $VENV with $("$py" -V 2>&1) and installing keystone $KEYSTONE_VERSION"
    if ! "$VENV/bin/python" -c pass 2>/dev/null; then
        "$py" -m venv --clear "$VENV"
    fi
    local cargs=()
    [[ $CONSTRAINTS != none ]] && cargs=(-c "$CONSTRAINTS")
    if ! {
        "$VENV/bin/pip" install -q --upgrade pip &&
            "$VENV/bin/pip" install -q "${cargs[@]}" "${PACKAGES[@]}"
    } >"$LOG/pip.log" 2>&1; then
        grep -v '^WARNING: Location' "$LOG/pip.log" | tail -n 30 >&2
        die "pip install failed (full output in $LOG/pip.log)"
    fi
    "$VENV/bin/python" -W ignore -c 'import keystone.server.wsgi, gunicorn, pymemcache, pymysql' ||
        die "the venv $VENV cannot import keystone"
    installed_stamp_value >"$INSTALL_STAMP"
    log "installed $("$VENV/bin/pip" list 2>/dev/null | awk '$1 == "keystone" {print "keystone " $2}') in $VENV"
}

# ---------------------------------------------------------------------------- start

render_conf() {
    cat <<EOF
# Written by deploy/keystone/keystone-aio.sh start; rewritten whenever its settings change.
[DEFAULT]
debug = false
use_stderr = false
log_dir = $LOG
log_file = keystone.log

[database]
connection = $DB_URL

[token]
provider = fernet
expiration = $TOKEN_EXPIRATION

[fernet_tokens]
key_repository = $KS_DIR/fernet-keys

[fernet_receipts]
key_repository = $KS_DIR/fernet-keys

[credential]
key_repository = $KS_DIR/credential-keys

[identity]
password_hash_algorithm = bcrypt
password_hash_rounds = $HASH_ROUNDS

# Only tokens scoped to project admin carry is_admin_project=True (X-Is-Admin-Project);
# unset, Keystone marks every project token as one of the cloud admin project.
[resource]
admin_project_domain_name = Default
admin_project_name = admin

[cache]
enabled = true
backend = dogpile.cache.pymemcache
memcache_servers = $HOST:$MC_PORT

# gunicorn workers: $WORKERS
EOF
}

start_memcached() {
    if port_open "$MC_PORT"; then
        return 0
    fi
    command -v memcached >/dev/null || die "memcached is not installed: run '$0 install' first"
    local user=nobody
    id memcache >/dev/null 2>&1 && user=memcache
    log "starting memcached on $HOST:$MC_PORT"
    setsid memcached -l "$HOST" -p "$MC_PORT" -U 0 -m 128 -c 1024 -u "$user" \
        </dev/null >>"$LOG/memcached.log" 2>&1 &
    echo $! >"$MC_PIDFILE"
    local i
    for ((i = 0; i < 50; i++)); do
        port_open "$MC_PORT" && return 0
        pid_alive "$MC_PIDFILE" || break
        sleep 0.1
    done
    tail -n 20 "$LOG/memcached.log" >&2 || true
    die "memcached did not start on $HOST:$MC_PORT"
}

manage() {
    "$VENV/bin/keystone-manage" --config-file "$ETC/keystone.conf" "$@" \
        </dev/null >>"$LOG/keystone-manage.log" 2>&1 || {
        tail -n 30 "$LOG/keystone-manage.log" >&2
        die "keystone-manage $1 failed (see $LOG/keystone-manage.log)"
    }
}

# database_ready: the default SQLite file is still there (other databases: trust the stamp).
database_ready() {
    [[ $DB_URL != "sqlite:///$KS_DIR/keystone.db" || -s $KS_DIR/keystone.db ]]
}

create_mysql_database() {
    [[ $DB_KIND == mysql && -z ${LAMINA_KEYSTONE_DB_URL:-} ]] || return 0
    "$VENV/bin/python" - <<'EOF' || die "cannot create database keystone_lamina on MariaDB 127.0.0.1:3306 (is it running? deploy/dev-services.sh start mariadb)"
import pymysql
c = pymysql.connect(host="127.0.0.1", port=3306, user="root", connect_timeout=10)
c.cursor().execute("CREATE DATABASE IF NOT EXISTS keystone_lamina CHARACTER SET utf8mb4")
c.close()
EOF
}

# setup_keystone: schema, keys and bootstrap. Complete runs leave SETUP_STAMP, naming the
# database, so that a later start (say after a reboot) skips the ~10 s of keystone-manage.
setup_keystone() {
    local stamp="db=$DB_URL port=$PORT"
    if [[ -f $SETUP_STAMP && $(<"$SETUP_STAMP") == "$stamp" ]] && database_ready &&
        [[ -f $KS_DIR/fernet-keys/0 && -f $KS_DIR/credential-keys/0 ]]; then
        return 0
    fi
    rm -f "$SETUP_STAMP"
    local user group
    user=$(id -un)
    group=$(id -gn)
    create_mysql_database
    log "keystone-manage db_sync, fernet_setup, credential_setup, bootstrap"
    manage db_sync
    manage fernet_setup --keystone-user "$user" --keystone-group "$group"
    manage credential_setup --keystone-user "$user" --keystone-group "$group"
    manage bootstrap \
        --bootstrap-username admin \
        --bootstrap-password "$ADMIN_PASSWORD" \
        --bootstrap-project-name admin \
        --bootstrap-role-name admin \
        --bootstrap-service-name keystone \
        --bootstrap-region-id "$REGION" \
        --bootstrap-public-url "$AUTH_URL" \
        --bootstrap-internal-url "$AUTH_URL"
    echo "$stamp" >"$SETUP_STAMP"
}

# render_gunicorn_conf: gunicorn's settings as its config file. Keystone parses sys.argv with
# oslo.config when it loads, and rejects gunicorn's options, so gunicorn is started with no
# argument at all and reads ./gunicorn.conf.py (cwd DIR/etc), app included.
render_gunicorn_conf() {
    cat <<EOF
# Written by deploy/keystone/keystone-aio.sh start.
import os
import warnings
os.environ["OS_KEYSTONE_CONFIG_DIR"] = "$ETC"
warnings.filterwarnings("ignore", message=r"\s*Eventlet is deprecated")
wsgi_app = "keystone.wsgi.api:application"
proc_name = "lamina-keystone"
bind = ["$HOST:$PORT"]
workers = $WORKERS
# Sync workers answer with "Connection: close": no idle keep-alive connection for
# keystoneauth to find reset (the recipe's ConnectionResetError with uWSGI's http-socket).
worker_class = "sync"
timeout = 120
graceful_timeout = 10
accesslog = "$LOG/access.log"
errorlog = "$LOG/gunicorn.log"
control_socket_disable = True
EOF
}

start_keystone() {
    log "starting Keystone (gunicorn, $WORKERS worker(s)) on $HOST:$PORT"
    render_gunicorn_conf >"$ETC/gunicorn.conf.py"
    : >>"$LOG/gunicorn.log"
    local log_offset
    log_offset=$(stat -c %s "$LOG/gunicorn.log")
    (cd "$ETC" && exec setsid "$VENV/bin/gunicorn" </dev/null >>"$LOG/gunicorn.log" 2>&1) &
    echo $! >"$KS_PIDFILE"
    local deadline=$((SECONDS + WAIT_SECONDS)) why=
    until keystone_answers; do
        if ! pid_alive "$KS_PIDFILE"; then
            why="Keystone exited at start"
        elif (($(tail -c +$((log_offset + 1)) "$LOG/gunicorn.log" | grep -c 'exited with code') >= 2)); then
            why="Keystone's workers die at start"
            stop_pid "$KS_PIDFILE" Keystone
        elif ((SECONDS >= deadline)); then
            why="Keystone did not answer $AUTH_URL within ${WAIT_SECONDS}s"
        fi
        if [[ -n $why ]]; then
            tail -c +$((log_offset + 1)) "$LOG/gunicorn.log" | grep -v '^ *$' | tail -n 30 >&2
            rm -f "$KS_PIDFILE"
            die "$why (logs in $LOG)"
        fi
        sleep 0.2
    done
}

seed() {
    local out
    out=$("$VENV/bin/python" "$HERE/keystone_seed.py" "$AUTH_URL" "$ADMIN_PASSWORD" "$USER_PASSWORD" \
        2> >(sed 's/^/keystone-aio: seed: /' >&2)) ||
        die "creating the test projects and users failed"
    printf '%s\n' "$out" >"$SEED_ENV"
}

cmd_start() {
    [[ -x $VENV/bin/keystone-manage && -f $INSTALL_STAMP ]] || die "no Keystone venv in $VENV: run '$0 install' first"
    local conf
    conf=$(render_conf)
    if keystone_answers; then
        if [[ -f $ETC/keystone.conf && $(<"$ETC/keystone.conf") == "$conf" ]]; then
            start_memcached
            log "Keystone already answers on $AUTH_URL"
            return 0
        fi
        if ! pid_alive "$KS_PIDFILE"; then
            log "something not started by this script answers on $AUTH_URL: leaving it alone"
            return 0
        fi
        log "settings changed: restarting Keystone"
        stop_pid "$KS_PIDFILE" Keystone
    elif pid_alive "$KS_PIDFILE"; then
        log "Keystone process runs but does not answer: restarting it"
        stop_pid "$KS_PIDFILE" Keystone
    fi
    port_open "$PORT" && die "port $HOST:$PORT is taken by something that is not Keystone"
    mkdir -p "$ETC" "$LOG" "$RUN"
    printf '%s\n' "$conf" >"$ETC/keystone.conf"
    start_memcached
    setup_keystone
    start_keystone
    seed
    log "Keystone answers on $AUTH_URL (logs in $LOG)"
}

# ---------------------------------------------------------------------------- others

cmd_stop() {
    stop_pid "$KS_PIDFILE" Keystone
    stop_pid "$MC_PIDFILE" memcached
}

cmd_status() {
    local rc=0
    if keystone_answers; then
        local who="not started by this script"
        pid_alive "$KS_PIDFILE" && who="pid $(<"$KS_PIDFILE")"
        echo "keystone: up on $AUTH_URL ($who)"
    else
        echo "keystone: down ($AUTH_URL does not answer)"
        rc=1
    fi
    if port_open "$MC_PORT"; then
        local who="not started by this script"
        pid_alive "$MC_PIDFILE" && who="pid $(<"$MC_PIDFILE")"
        echo "memcached: up on $HOST:$MC_PORT ($who)"
    else
        echo "memcached: down ($HOST:$MC_PORT)"
        rc=1
    fi
    return $rc
}

cmd_env() {
    cat <<EOF
export OS_AUTH_URL=$AUTH_URL
export OS_IDENTITY_API_VERSION=3
export LAMINA_KS_AUTH_URL=$AUTH_URL
export LAMINA_KS_WWW_AUTHENTICATE_URI=http://$HOST:$PORT
export LAMINA_KS_MEMCACHED_SERVERS=$HOST:$MC_PORT
export LAMINA_KS_REGION=$REGION
export LAMINA_KS_DOMAIN=Default
export LAMINA_KS_ADMIN_USER=admin
export LAMINA_KS_ADMIN_PASSWORD=$ADMIN_PASSWORD
export LAMINA_KS_ADMIN_PROJECT=admin
export LAMINA_KS_PASSWORD=$USER_PASSWORD
export LAMINA_KS_PROJECT_A=alpha
export LAMINA_KS_PROJECT_B=beta
export LAMINA_KS_MEMBER_A_USER=alice
export LAMINA_KS_MEMBER_B_USER=bob
export LAMINA_KS_READER_A_USER=carol
export LAMINA_KS_ADMIN_A_USER=dave
export LAMINA_KS_SERVICE_USER=lamina
export LAMINA_KS_SERVICE_PASSWORD=$USER_PASSWORD
export LAMINA_KS_SERVICE_PROJECT=service
EOF
    [[ -f $SEED_ENV ]] && cat "$SEED_ENV"
    return 0
}

case ${1:-} in
    install) cmd_install ;;
    start) cmd_start ;;
    stop) cmd_stop ;;
    restart) cmd_stop; cmd_start ;;
    seed)
        keystone_answers || die "Keystone does not answer on $AUTH_URL"
        seed ;;
    status) cmd_status ;;
    env) cmd_env ;;
    *)
        sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//' >&2
        exit 2 ;;
esac
