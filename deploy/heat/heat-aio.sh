#!/usr/bin/env bash
# heat-aio.sh - a real, loopback-only OpenStack Heat (PyPI `openstack-heat`: heat-api and
# heat-engine) in its own venv, the orchestration client of Lamina's tests
# (tests/integration/test_heat.py): Heat's OS::Cinder::* resources drive Lamina's API the way
# a cloud's users' templates would. Needs the Keystone of deploy/keystone/keystone-aio.sh (with
# its memcached), MariaDB on 127.0.0.1:3306 (root, no password) and RabbitMQ on
# 127.0.0.1:5672 (guest), all started by `make services`.
#
# usage: deploy/heat/heat-aio.sh install|start|stop|status|env
#
#   install  create DIR/venv and pip install openstack-heat (versions pinned by
#            constraints.txt beside this script). Idempotent: a no-op (well under a second)
#            when already done. Starts nothing.
#   start    write the config files, create the database and the RabbitMQ vhost, run
#            `heat-manage db_sync` (first time only), register in Keystone the heat user, the
#            stack-user domain (heat, with its admin heat_domain_admin), the roles
#            heat_stack_user and heat_stack_owner, the orchestration service and its
#            endpoints, start heat-engine and heat-api (gunicorn, heat.wsgi.api:application)
#            and wait until the API answers and the engine has reported in.
#   stop     stop heat-api and heat-engine (TERM, then KILL after 10 s).
#   status   print what runs; exit 1 when something is down.
#   env      print `export` lines (LAMINA_HEAT_*) for the tests.
#
# Heat finds the volume API (service type volumev3) in Keystone's region lamina-heat only
# (LAMINA_HEAT_VOLUME_REGION): whoever runs a Lamina for it registers that Lamina there
# (tests/integration/test_heat.py does); every other service (compute, image, identity) is
# looked up in RegionOne.
#
# Environment (all optional):
#   LAMINA_HEAT_DIR   base dir: venv/, etc/, log/, run/, state/ (/var/lib/lamina-heat)
#   LAMINA_HEAT_PORT  heat-api's port (8004, Heat's usual)
#   LAMINA_HEAT_VOLUME_REGION  the region Heat takes the volume API from (lamina-heat)
#   LAMINA_HEAT_WAIT  seconds to wait for heat-api and heat-engine (60)
#   LAMINA_HEAT_CONSTRAINTS  pip constraints file, or "none" (constraints.txt here)
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
KEYSTONE_AIO=$HERE/../keystone/keystone-aio.sh
DIR=${LAMINA_HEAT_DIR:-/var/lib/lamina-heat}
VENV=$DIR/venv
ETC=$DIR/etc
LOG=$DIR/log
RUN=$DIR/run
STATE=$DIR/state
HOST=127.0.0.1
PORT=${LAMINA_HEAT_PORT:-8004}
VOLUME_REGION=${LAMINA_HEAT_VOLUME_REGION:-lamina-heat}
WAIT_SECONDS=${LAMINA_HEAT_WAIT:-60}
CONSTRAINTS=${LAMINA_HEAT_CONSTRAINTS:-$HERE/constraints.txt}
HEAT_VERSION=27.0.1
# python-memcached: keystonemiddleware with memcached_servers answers every request 500
# without it; python-heatclient: the tests' and a person's `heat`/`openstack stack` client
PACKAGES=("openstack-heat==$HEAT_VERSION" PyMySQL python-memcached gunicorn python-heatclient)
PASSWORD=lamina-pass
DB_NAME=lamina_heat
DB=mysql+pymysql://root@127.0.0.1:3306/$DB_NAME?charset=utf8
VHOST=lamina-heat
URL=http://$HOST:$PORT
# Keystone substitutes the token's project
ENDPOINT_URL="$URL/v1/%(tenant_id)s"
SERVICES=(heat-engine heat-api)

log() { echo "heat-aio: $*" >&2; }
die() { echo "heat-aio: $*" >&2; exit 1; }

stamp_value() {  # packages
    local c=none
    [[ $CONSTRAINTS != none ]] && c=$(sha256sum <"$CONSTRAINTS" | cut -c1-16)
    echo "$* constraints=$c"
}

installed() {
    [[ -f $VENV/.lamina-installed ]]
}

cmd_install() {
    mkdir -p "$DIR" "$LOG"
    command -v curl >/dev/null || die "curl is missing (apt-get install curl)"
    local want
    want=$(stamp_value "${PACKAGES[*]}")
    if [[ -f $VENV/.lamina-installed && $(<"$VENV/.lamina-installed") == "$want" ]] &&
        "$VENV/bin/python" -c pass 2>/dev/null; then
        log "$VENV already installed"
        return 0
    fi
    log "installing ${PACKAGES[*]} into $VENV"
    "$VENV/bin/python" -c pass 2>/dev/null || python3 -m venv --clear "$VENV"
    local cargs=()
    [[ $CONSTRAINTS != none ]] && cargs=(-c "$CONSTRAINTS")
    if ! { "$VENV/bin/pip" install -q --upgrade pip &&
        "$VENV/bin/pip" install -q "${cargs[@]}" "${PACKAGES[@]}"; } >"$LOG/pip.log" 2>&1; then
        grep -v '^WARNING: Location' "$LOG/pip.log" | tail -n 30 >&2
        die "pip install into $VENV failed ($LOG/pip.log)"
    fi
    "$VENV/bin/python" -W ignore -c "import heat.wsgi, heat.cmd.engine, pymysql, memcache, gunicorn, heatclient" ||
        die "$VENV cannot import heat"
    echo "$want" >"$VENV/.lamina-installed"
}

# ---------------------------------------------------------------------------- config

ks_env() {
    bash "$KEYSTONE_AIO" status >/dev/null 2>&1 ||
        die "Keystone does not answer: bash deploy/keystone/keystone-aio.sh start (make services)"
    eval "$(bash "$KEYSTONE_AIO" env)"
}

write_configs() {
    mkdir -p "$ETC" "$LOG" "$RUN" "$STATE/lock"
    cp "$VENV/etc/heat/api-paste.ini" "$ETC/api-paste.ini"
    cat >"$ETC/heat.conf" <<EOF
# Written by deploy/heat/heat-aio.sh start.
[DEFAULT]
debug = false
log_dir = $LOG
transport_url = rabbit://guest:guest@$HOST:5672/$VHOST
# one engine worker: the machine has two cores, and a test's stacks are small
num_engine_workers = 1
# templates' resources reach every service in RegionOne except the volume API, which the
# tests register per Lamina in a region of its own (shared with nobody else's clients)
region_name_for_services = RegionOne
region_name_for_shared_services = $VOLUME_REGION
shared_services_types = volumev3
stack_user_domain_name = heat
stack_domain_admin = heat_domain_admin
stack_domain_admin_password = $PASSWORD
environment_dir = $VENV/etc/heat/environment.d
template_dir = $VENV/etc/heat/templates
# what a server's user data points its guest agents at; no heat-api-cfn runs (and no guest
# reads it: deploy/nova's virt driver is the fake one), but unset, every OS::Nova::Server
# fails looking for a cloudformation endpoint in the catalog
heat_metadata_server_url = http://$HOST:8000
heat_waitcondition_server_url = http://$HOST:8000/v1/waitcondition
# a failed resource stays failed (a retry would hide what Lamina answered)
action_retry_limit = 0
# heat-engine reports in (the services table GET /services lists) this often: its first
# report, which start waits for, comes one interval after it starts (60 s by default)
periodic_interval = 5
[heat_api]
bind_host = $HOST
bind_port = $PORT
workers = 1
[paste_deploy]
api_paste_config = $ETC/api-paste.ini
[database]
connection = $DB
[oslo_concurrency]
lock_path = $STATE/lock
[oslo_messaging_notifications]
driver = noop
[clients]
endpoint_type = publicURL
[clients_keystone]
auth_uri = $LAMINA_KS_WWW_AUTHENTICATE_URI
[trustee]
auth_type = password
auth_url = $LAMINA_KS_AUTH_URL
username = heat
password = $PASSWORD
user_domain_name = Default
[keystone_authtoken]
auth_type = password
auth_url = $LAMINA_KS_AUTH_URL
username = heat
password = $PASSWORD
project_name = service
user_domain_name = Default
project_domain_name = Default
region_name = RegionOne
www_authenticate_uri = $LAMINA_KS_WWW_AUTHENTICATE_URI
memcached_servers = $LAMINA_KS_MEMCACHED_SERVERS
EOF
    cat >"$ETC/gunicorn.conf.py" <<EOF
# heat's WSGI app parses sys.argv with oslo.config when a worker loads it: gunicorn gets no
# argument, reads this file from its working directory, and the app finds its config here
import sys
sys.argv = [sys.argv[0], "--config-file", "$ETC/heat.conf", "--log-file", "heat-api.log"]
wsgi_app = "heat.wsgi.api:application"
bind = "$HOST:$PORT"
workers = 1
worker_class = "gthread"
threads = 4
timeout = 120
# on TERM a worker waits for threads heat's app leaves running (oslo.messaging's): stop would
# hang for gunicorn's 30 s default before its KILL
graceful_timeout = 2
accesslog = "$LOG/heat-api-access.log"
errorlog = "$LOG/heat-api-gunicorn.log"
# gunicorn 27's default control socket (~/.gunicorn/gunicorn.ctl) is shared by every gunicorn
# of the machine (Keystone's, Nova's, Glance's): each start would take it over from the others
control_socket = "$RUN/gunicorn.ctl"
EOF
}

# ---------------------------------------------------------------------------- set-up

setup_backing() {
    local stamp="$DB heat=$HEAT_VERSION"
    if ! rabbitmqctl -q list_vhosts 2>/dev/null | grep -qx "$VHOST"; then
        rabbitmqctl -q add_vhost "$VHOST" >/dev/null
        rabbitmqctl -q set_permissions -p "$VHOST" guest '.*' '.*' '.*' >/dev/null
    fi
    [[ -f $DIR/.db-setup && $(<"$DIR/.db-setup") == "$stamp" ]] && return 0
    "$VENV/bin/python" - "$DB_NAME" <<'EOF' || die "cannot create the database on MariaDB 127.0.0.1:3306 (deploy/dev-services.sh start mariadb)"
import sys
import pymysql
c = pymysql.connect(host="127.0.0.1", port=3306, user="root", connect_timeout=10)
c.cursor().execute("CREATE DATABASE IF NOT EXISTS %s CHARACTER SET utf8" % sys.argv[1])
c.close()
EOF
    log "heat-manage db_sync"
    "$VENV/bin/heat-manage" --config-file "$ETC/heat.conf" db_sync \
        </dev/null >>"$LOG/heat-manage.log" 2>&1 ||
        die "heat-manage db_sync failed ($LOG/heat-manage.log)"
    echo "$stamp" >"$DIR/.db-setup"
}

# register: the heat user (admin on project service), the stack-user domain heat with its
# admin, the roles Heat names, the orchestration service with public and internal endpoints
# in RegionOne; through a system-scoped admin token (keystone's policies). Idempotent.
register() {
    "$VENV/bin/python" - "$LAMINA_KS_AUTH_URL" "$LAMINA_KS_ADMIN_PASSWORD" "$PASSWORD" \
        "$ENDPOINT_URL" <<'EOF' || die "registering heat in Keystone failed"
import sys
from keystoneauth1 import session
from keystoneauth1.identity import v3
from keystoneclient.v3 import client

auth_url, admin_password, password, url = sys.argv[1:]
auth = v3.Password(auth_url=auth_url, username="admin", password=admin_password,
                   user_domain_id="default", system_scope="all")
ks = client.Client(session=session.Session(auth=auth), interface="public")


def role(name):
    found = ks.roles.list(name=name)
    return found[0] if found else ks.roles.create(name)


def user(name, domain, **kwargs):
    found = ks.users.list(name=name, domain=domain)
    return found[0] if found else ks.users.create(name, domain=domain, password=password,
                                                  **kwargs)


projects = ks.projects.list(name="service", domain="default")
if not projects:
    raise SystemExit("no project service: run deploy/keystone/keystone-aio.sh seed")
admin = role("admin")
heat = user("heat", "default", default_project=projects[0])
ks.roles.grant(admin, user=heat, project=projects[0])
# template-defined users (and their credentials) live in a domain of their own
domains = ks.domains.list(name="heat")
domain = domains[0] if domains else ks.domains.create(
    "heat", description="Owns users and projects created by heat (deploy/heat)")
ks.roles.grant(admin, user=user("heat_domain_admin", domain), domain=domain)
role("heat_stack_user")
role("heat_stack_owner")
services = ks.services.list(type="orchestration")
service = services[0] if services else ks.services.create("heat", "orchestration",
                                                          enabled=True)
if "RegionOne" not in {r.id for r in ks.regions.list()}:
    ks.regions.create(id="RegionOne")
have = set()
for endpoint in ks.endpoints.list(service=service, region="RegionOne"):
    if endpoint.url != url or endpoint.interface in have:
        ks.endpoints.delete(endpoint)
    else:
        have.add(endpoint.interface)
for interface in ("public", "internal"):
    if interface not in have:
        ks.endpoints.create(service, url, interface=interface, region="RegionOne")
EOF
}

# ---------------------------------------------------------------------------- processes

# pid_alive NAME: the process of RUN/NAME.pid runs and is ours (its command line or working
# directory names DIR: gunicorn renames itself "gunicorn: master"), not one that got the pid
# later
pid_alive() {
    local pid seen
    [[ -s $RUN/$1.pid ]] || return 1
    pid=$(<"$RUN/$1.pid")
    [[ $pid =~ ^[0-9]+$ ]] && kill -0 "$pid" 2>/dev/null || return 1
    seen="$(tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null) $(readlink "/proc/$pid/cwd" 2>/dev/null)"
    [[ $seen == *"$DIR"* ]]
}

launch() {  # name cwd argv...
    local name=$1 cwd=$2
    shift 2
    pid_alive "$name" && return 0
    # 9>&-: the service must not hold start's lock for as long as it runs
    (cd "$cwd" && exec setsid "$@" </dev/null >>"$LOG/$name.out" 2>&1 9>&-) &
    echo $! >"$RUN/$name.pid"
}

# ready: heat-api answers an authenticated request that goes through to heat-engine (GET
# /services lists the engines that reported in over RPC), and an engine is up
ready() {
    "$VENV/bin/python" - "$LAMINA_KS_AUTH_URL" "$LAMINA_KS_ADMIN_PASSWORD" "$URL" <<'EOF'
import sys
from keystoneauth1 import session
from keystoneauth1.identity import v3

auth_url, admin_password, url = sys.argv[1:]
auth = v3.Password(auth_url=auth_url, username="admin", password=admin_password,
                   user_domain_id="default", project_name="admin", project_domain_id="default")
s = session.Session(auth=auth)
project = s.get_project_id()
resp = s.get("%s/v1/%s/services" % (url, project), raise_exc=False, timeout=10)
up = resp.status_code == 200 and any(e["status"] == "up" for e in resp.json()["services"])
sys.exit(0 if up else 1)
EOF
}

check_alive() {
    local name
    for name in "${SERVICES[@]}"; do
        if ! pid_alive "$name"; then
            tail -n 20 "$LOG/$name.out" >&2
            die "$name exited (logs in $LOG: $name.log, $name.out, heat-api-gunicorn.log)"
        fi
    done
}

cmd_start() {
    installed || die "Heat is not installed: bash deploy/heat/heat-aio.sh install (make services)"
    # two starts at once (two test runs' fixtures) would launch two of each
    mkdir -p "$RUN"
    exec 9>"$RUN/start.lock"
    flock 9
    ks_env
    write_configs
    setup_backing
    register
    launch heat-engine "$DIR" "$VENV/bin/heat-engine" --config-file "$ETC/heat.conf"
    launch heat-api "$ETC" "$VENV/bin/gunicorn"
    local deadline=$((SECONDS + WAIT_SECONDS))
    until curl -fsS --max-time 5 -o /dev/null "$URL/healthcheck" 2>/dev/null && ready 2>/dev/null; do
        check_alive
        ((SECONDS < deadline)) ||
            die "heat does not answer on $URL (or no engine is up) after ${WAIT_SECONDS}s (logs in $LOG)"
        sleep 0.3
    done
    log "Heat up: $URL (volume API from region $VOLUME_REGION)"
}

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
export LAMINA_HEAT_INSTALLED=$(installed && echo 1 || echo 0)
export LAMINA_HEAT_URL=$URL
export LAMINA_HEAT_VOLUME_REGION=$VOLUME_REGION
export LAMINA_HEAT_PYTHON=$VENV/bin/python
export LAMINA_HEAT_LOG_DIR=$LOG
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
