#!/usr/bin/env bash
# glance-aio.sh - a real, loopback-only OpenStack Glance (PyPI `glance`) in its own venv, with
# two stores: `file` (the default) and `ceph` (rbd, the pool `images` of deploy/ceph's cluster):
# the image service of the test Nova (deploy/nova, Tempest's [compute] image_ref) and of
# Lamina's volume-from-image work (an rbd volume from an image of the `ceph` store is a clone
# of its snapshot). Needs the Keystone of deploy/keystone/keystone-aio.sh (with its memcached)
# and MariaDB on 127.0.0.1:3306 (root, no password), started by `make services`; the `ceph`
# store needs the cluster of deploy/ceph/ceph-aio.sh (without it: the file store only).
#
# usage: deploy/glance/glance-aio.sh install|start|stop|status|env
#
#   install  create DIR/venv and pip install glance (versions pinned by constraints.txt beside
#            this script). Idempotent: a no-op (well under a second) when already done.
#            Starts nothing.
#   start    set up the `ceph` store (the pool `images`, created when missing; the cephx
#            user client.glance with `profile rbd` on it; read-only access to it for Lamina's
#            user client.lamina; Debian's rados/rbd bindings linked into the venv), write the
#            config files, create the database and run `glance-manage db_sync` (first time
#            only), register the glance user, the image service and its endpoints in
#            Keystone, start glance-api (gunicorn, glance.wsgi.api:application; restarted
#            when it runs with another config), wait until it answers, and upload the public
#            image lamina-tempest-tiny (file store) when it is absent.
#   stop     stop glance-api (TERM, then KILL after 10 s).
#   status   print what runs; exit 1 when it is down.
#   env      print `export` lines (LAMINA_GLANCE_*) for the tests.
#
# Environment (all optional):
#   LAMINA_GLANCE_DIR   base dir: venv/, etc/, log/, run/, images/, staging/ (/var/lib/lamina-glance)
#   LAMINA_GLANCE_PORT  glance-api's port (9292: what deploy/nova's [glance] endpoint_override says)
#   LAMINA_GLANCE_WAIT  seconds to wait for glance-api to answer (60)
#   LAMINA_GLANCE_CONSTRAINTS  pip constraints file, or "none" (constraints.txt here)
#   LAMINA_GLANCE_RBD   auto: the `ceph` store when deploy/ceph's cluster answers, else the
#                       file store only (a warning); 1: fail without it; 0: never (auto)
#   LAMINA_CEPH_DIR     deploy/ceph's state directory: conf, keyrings (/var/lib/lamina-ceph)
#   LAMINA_CEPH_USER    Lamina's cephx user, given read access to the pool `images` (lamina)
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
KEYSTONE_AIO=$HERE/../keystone/keystone-aio.sh
DIR=${LAMINA_GLANCE_DIR:-/var/lib/lamina-glance}
VENV=$DIR/venv
ETC=$DIR/etc
LOG=$DIR/log
RUN=$DIR/run
HOST=127.0.0.1
PORT=${LAMINA_GLANCE_PORT:-9292}
WAIT_SECONDS=${LAMINA_GLANCE_WAIT:-60}
CONSTRAINTS=${LAMINA_GLANCE_CONSTRAINTS:-$HERE/constraints.txt}
GLANCE_VERSION=33.0.0
# python-memcached: keystonemiddleware with memcached_servers answers every request 500 without it
PACKAGES=("glance==$GLANCE_VERSION" PyMySQL python-memcached gunicorn)
PASSWORD=lamina-pass
DB_NAME=lamina_glance
DB=mysql+pymysql://root@127.0.0.1:3306/$DB_NAME?charset=utf8
URL=http://$HOST:$PORT
IMAGE_NAME=lamina-tempest-tiny
# the rbd store: the cluster of deploy/ceph/ceph-aio.sh, as client.admin to set it up
CEPH_AIO=$HERE/../ceph/ceph-aio.sh
CEPH_DIR=${LAMINA_CEPH_DIR:-/var/lib/lamina-ceph}
CEPH_CONF=$CEPH_DIR/ceph.conf
CEPH_ADMIN_KEYRING=$CEPH_DIR/ceph.client.admin.keyring
RBD_MODE=${LAMINA_GLANCE_RBD:-auto}
RBD_STORE=ceph        # the store's id in enabled_backends (what X-Image-Meta-Store names)
RBD_POOL=images
RBD_USER=glance
# where the conf's `[client] keyring = DIR/ceph.$name.keyring` finds it: glance_store's rbd
# driver takes no keyring option
RBD_KEYRING=$CEPH_DIR/ceph.client.$RBD_USER.keyring
LAMINA_CEPH_USER=${LAMINA_CEPH_USER:-lamina}
CEPH_PY=/usr/bin/python3   # Debian's interpreter, the one python3-rados is built for

log() { echo "glance-aio: $*" >&2; }
die() { echo "glance-aio: $*" >&2; exit 1; }

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
    "$VENV/bin/python" -W ignore -c "import glance.common.wsgi_app, pymysql, memcache, gunicorn" ||
        die "$VENV cannot import glance"
    echo "$want" >"$VENV/.lamina-installed"
}

# ---------------------------------------------------------------------------- config

ks_env() {
    bash "$KEYSTONE_AIO" status >/dev/null 2>&1 ||
        die "Keystone does not answer: bash deploy/keystone/keystone-aio.sh start (make services)"
    eval "$(bash "$KEYSTONE_AIO" env)"
}

# write_configs RBD: glance-api.conf (with the `ceph` store when RBD is 1), the paste file
# and gunicorn's config
write_configs() {
    local rbd=$1 backends=file:file rbd_section=
    mkdir -p "$ETC" "$LOG" "$RUN" "$DIR/images" "$DIR/staging" "$DIR/tasks" "$DIR/lock"
    cp "$VENV/etc/glance/glance-api-paste.ini" "$ETC/glance-api-paste.ini"
    if [[ $rbd == 1 ]]; then
        backends="file:file, $RBD_STORE:rbd"
        # rados_connect_timeout: glance_store connects at start to learn the fsid, and would
        # wait for ever on a cluster that does not answer
        rbd_section="[$RBD_STORE]
store_description = Ceph RBD pool $RBD_POOL (deploy/ceph)
rbd_store_pool = $RBD_POOL
rbd_store_user = $RBD_USER
rbd_store_ceph_conf = $CEPH_CONF
rbd_store_chunk_size = 8
rados_connect_timeout = 10"
    fi
    # multi-store form: [glance_store] stores/default_store are deprecated since Rocky, and
    # the reserved staging/tasks stores default to /var/lib/glance otherwise
    cat >"$ETC/glance-api.conf" <<EOF
# Written by deploy/glance/glance-aio.sh start.
[DEFAULT]
debug = false
log_dir = $LOG
log_file = glance-api.log
bind_host = $HOST
bind_port = $PORT
public_endpoint = $URL
enabled_backends = $backends
# images are kept whole in their store; no image-conversion or web-download magic
enabled_import_methods = [glance-direct]
# an image's direct_url (its first location: rbd://<fsid>/$RBD_POOL/<image>/snap in the ceph
# store) in its show answer: what lets Lamina's rbd back end clone it instead of downloading
show_image_direct_url = True
[glance_store]
default_backend = file
[file]
filesystem_store_datadir = $DIR/images/
$rbd_section
[os_glance_staging_store]
filesystem_store_datadir = $DIR/staging/
[os_glance_tasks_store]
filesystem_store_datadir = $DIR/tasks/
[database]
connection = $DB
[paste_deploy]
flavor = keystone
config_file = $ETC/glance-api-paste.ini
[oslo_concurrency]
lock_path = $DIR/lock
[oslo_messaging_notifications]
driver = noop
[keystone_authtoken]
auth_type = password
auth_url = $LAMINA_KS_AUTH_URL
username = glance
password = $PASSWORD
project_name = service
user_domain_name = Default
project_domain_name = Default
region_name = RegionOne
www_authenticate_uri = $LAMINA_KS_WWW_AUTHENTICATE_URI
memcached_servers = $LAMINA_KS_MEMCACHED_SERVERS
EOF
    cat >"$ETC/gunicorn.conf.py" <<EOF
# glance's WSGI app reads its config files from this directory and parses no command line
import os
os.environ["OS_GLANCE_CONFIG_DIR"] = "$ETC"
wsgi_app = "glance.wsgi.api:application"
bind = "$HOST:$PORT"
workers = 1
# threads: an image upload or download streams for seconds; others must not wait behind it
worker_class = "gthread"
threads = 8
timeout = 300
accesslog = "$LOG/glance-api-access.log"
errorlog = "$LOG/glance-api-gunicorn.log"
# gunicorn 27's default control socket (~/.gunicorn/gunicorn.ctl) is shared by every gunicorn
# of the machine (Keystone's, Nova's): each start would take it over from the others
control_socket = "$RUN/gunicorn.ctl"
EOF
}

# ---------------------------------------------------------------------------- set-up

# setup_ceph: the `ceph` store's side of the cluster, idempotent: the pool (size 1, rbd
# application, `rbd pool init`), client.glance (`profile rbd` on it) and its keyring,
# `profile rbd-read-only` on it for Lamina's user (a clone reads its parent; ceph-aio.sh
# gives the same caps), the bindings in the venv; the cluster's fsid in RUN/ceph-fsid.
# Exit 0 when the store can be used; else a warning (LAMINA_GLANCE_RBD=auto) or the end of
# start (=1).
bindings_linked() {  # (a second of python starts saved on each start)
    local mod
    for mod in rados rbd; do
        compgen -G "$VENV/lib/python3*/site-packages/$mod.cpython-*.so" >/dev/null || return 1
    done
}

setup_ceph() {
    rm -f "$RUN/ceph-fsid"
    [[ $RBD_MODE == 0 ]] && return 1
    local why=
    if [[ ! -f $CEPH_CONF || ! -f $CEPH_ADMIN_KEYRING ]]; then
        why="no Ceph cluster at $CEPH_DIR (bash deploy/ceph/ceph-aio.sh start)"
    elif ! "$CEPH_PY" -c 'import rados, rbd' 2>/dev/null; then
        why="python3-rados/python3-rbd missing (bash deploy/ceph/ceph-aio.sh install)"
    elif ! bindings_linked && ! bash "$CEPH_AIO" pybind "$VENV" >/dev/null 2>>"$LOG/ceph-setup.log"; then
        why="cannot link the rados/rbd bindings into $VENV ($LOG/ceph-setup.log)"
    elif ! timeout 90 "$CEPH_PY" - "$CEPH_CONF" "$CEPH_ADMIN_KEYRING" "$RBD_POOL" "$RBD_USER" \
        "$RBD_KEYRING" "$LAMINA_CEPH_USER" >"$RUN/ceph-fsid.tmp" 2>>"$LOG/ceph-setup.log" <<'EOF'; then
import json, os, sys
import rados, rbd

conf, admin_keyring, pool, user, user_keyring, lamina_user = sys.argv[1:]
r = rados.Rados(conffile=conf, rados_id="admin",
                conf={"keyring": admin_keyring, "rados_mon_op_timeout": "30",
                      "rados_osd_op_timeout": "30"})
r.connect(timeout=15)


def mon(prefix, fmt="json", **kw):
    cmd = dict(prefix=prefix, **kw)
    if fmt:
        cmd["format"] = fmt
    ret, out, err = r.mon_command(json.dumps(cmd), b"", timeout=30)
    if ret:
        raise RuntimeError("ceph %s: %s (%d)" % (prefix, err.strip(), ret))
    return json.loads(out) if fmt and out.strip() else out


pools = {p["pool_name"]: p for p in mon("osd pool ls", detail="detail")}
if pool not in pools:
    mon("osd pool create", pool=pool, pg_num=8, pgp_num=8)
    mon("osd pool set", pool=pool, var="size", val="1", yes_i_really_mean_it=True)
    mon("osd pool set", pool=pool, var="min_size", val="1")
    print("created pool %s" % pool, file=sys.stderr)
if "rbd" not in pools.get(pool, {}).get("application_metadata", {}):
    with r.open_ioctx(pool) as ioctx:
        rbd.RBD().pool_init(ioctx, False)
caps = ["mon", "profile rbd", "osd", "profile rbd pool=" + pool,
        "mgr", "profile rbd pool=" + pool]
entity = "client." + user
try:
    mon("auth get-or-create", fmt=None, entity=entity, caps=caps)
except RuntimeError:  # exists with other caps: set ours
    mon("auth caps", fmt=None, entity=entity, caps=caps)
text = mon("auth get", fmt=None, entity=entity)
if not os.path.exists(user_keyring) or open(user_keyring, "rb").read() != text:
    tmp = user_keyring + ".tmp"
    with open(os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600), "wb") as f:
        f.write(text)
    os.replace(tmp, user_keyring)
# Lamina's user reads the images it clones: `profile rbd-read-only pool=images` after
# whatever osd caps it has (ceph-aio.sh writes the same string, so its setup keeps it)
lamina = mon("auth get", entity="client." + lamina_user)[0]["caps"]
if "pool=" + pool not in lamina.get("osd", ""):
    lamina["osd"] = ", ".join(c for c in (lamina.get("osd"),
                                          "profile rbd-read-only pool=" + pool) if c)
    mon("auth caps", fmt=None, entity="client." + lamina_user,
        caps=[x for kind in sorted(lamina) for x in (kind, lamina[kind])])
    print("client.%s may now read pool %s" % (lamina_user, pool), file=sys.stderr)
print(r.get_fsid())
r.shutdown()
EOF
        why="setting up pool $RBD_POOL and client.$RBD_USER failed ($LOG/ceph-setup.log)"
    fi
    if [[ -z $why ]]; then
        mv -f "$RUN/ceph-fsid.tmp" "$RUN/ceph-fsid"
        return 0
    fi
    rm -f "$RUN/ceph-fsid.tmp"
    [[ $RBD_MODE == 1 ]] && die "the ceph store: $why"
    log "warning: the ceph store is left out: $why"
    return 1
}

# setup_database: the schema, once (stamp DIR/.db-setup)
setup_database() {
    local stamp="$DB glance=$GLANCE_VERSION"
    [[ -f $DIR/.db-setup && $(<"$DIR/.db-setup") == "$stamp" ]] && return 0
    "$VENV/bin/python" - "$DB_NAME" <<'EOF' || die "cannot create the database on MariaDB 127.0.0.1:3306 (deploy/dev-services.sh start mariadb)"
import sys
import pymysql
c = pymysql.connect(host="127.0.0.1", port=3306, user="root", connect_timeout=10)
c.cursor().execute("CREATE DATABASE IF NOT EXISTS %s CHARACTER SET utf8" % sys.argv[1])
c.close()
EOF
    log "glance-manage db_sync"
    "$VENV/bin/glance-manage" --config-file "$ETC/glance-api.conf" db_sync \
        </dev/null >>"$LOG/glance-manage.log" 2>&1 ||
        die "glance-manage db_sync failed ($LOG/glance-manage.log)"
    echo "$stamp" >"$DIR/.db-setup"
}

# register: the glance user (admin on project service), the image service and its public and
# internal endpoints in RegionOne, through a system-scoped admin token (keystone's policies)
register() {
    "$VENV/bin/python" - "$LAMINA_KS_AUTH_URL" "$LAMINA_KS_ADMIN_PASSWORD" "$PASSWORD" "$URL" \
        <<'EOF' || die "registering glance in Keystone failed"
import sys
from keystoneauth1 import session
from keystoneauth1.identity import v3
from keystoneclient.v3 import client

auth_url, admin_password, password, url = sys.argv[1:]
auth = v3.Password(auth_url=auth_url, username="admin", password=admin_password,
                   user_domain_id="default", system_scope="all")
ks = client.Client(session=session.Session(auth=auth), interface="public")
projects = ks.projects.list(name="service", domain="default")
if not projects:
    raise SystemExit("no project service: run deploy/keystone/keystone-aio.sh seed")
users = ks.users.list(name="glance", domain="default")
user = users[0] if users else ks.users.create(
    "glance", domain="default", password=password, default_project=projects[0])
ks.roles.grant(ks.roles.list(name="admin")[0], user=user, project=projects[0])
services = ks.services.list(type="image")
service = services[0] if services else ks.services.create("glance", "image", enabled=True)
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

# ensure_image: the public image lamina-tempest-tiny (raw, bare, 1 MiB of bytes 0..255
# repeated), uploaded by the admin of project admin when no active one is there; one left
# behind unfinished (queued, saving) by an interrupted start is deleted first. Prints its id.
ensure_image() {
    "$VENV/bin/python" - "$LAMINA_KS_AUTH_URL" "$LAMINA_KS_ADMIN_PASSWORD" "$URL" "$IMAGE_NAME" \
        <<'EOF'
import sys
from keystoneauth1 import session
from keystoneauth1.identity import v3

auth_url, admin_password, url, name = sys.argv[1:]
auth = v3.Password(auth_url=auth_url, username="admin", password=admin_password,
                   user_domain_id="default", project_name="admin", project_domain_id="default")
s = session.Session(auth=auth)
found = s.get(url + "/v2/images", params={"name": name}).json()["images"]
active = [i for i in found if i["status"] == "active"]
for image in found:
    if image["status"] != "active":
        s.delete(url + "/v2/images/" + image["id"])
if active:
    print(active[0]["id"])
    raise SystemExit(0)
image = s.post(url + "/v2/images", json={
    "name": name, "disk_format": "raw", "container_format": "bare",
    "visibility": "public"}).json()
s.put(url + "/v2/images/%s/file" % image["id"], data=bytes(range(256)) * 4096,
      headers={"Content-Type": "application/octet-stream"})
status = s.get(url + "/v2/images/" + image["id"]).json()["status"]
if status != "active":
    raise SystemExit("image %s is %s after its upload" % (image["id"], status))
print(image["id"])
EOF
}

# ---------------------------------------------------------------------------- processes

# api_alive: the process of RUN/glance-api.pid runs and is ours (gunicorn renames itself
# "gunicorn: master": its working directory names DIR), not one that got the pid later
api_alive() {
    local pid seen
    [[ -s $RUN/glance-api.pid ]] || return 1
    pid=$(<"$RUN/glance-api.pid")
    [[ $pid =~ ^[0-9]+$ ]] && kill -0 "$pid" 2>/dev/null || return 1
    seen="$(tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null) $(readlink "/proc/$pid/cwd" 2>/dev/null)"
    [[ $seen == *"$DIR"* ]]
}

answers() {
    curl -fsS --max-time 5 -o /dev/null "$URL/healthcheck" 2>/dev/null
}

cmd_start() {
    installed || die "Glance is not installed: bash deploy/glance/glance-aio.sh install (make services)"
    # two starts at once (a test module's and the shared cloud's) would upload two tiny images
    mkdir -p "$RUN"
    exec 9>"$RUN/start.lock"
    flock 9
    ks_env
    local rbd=0 config
    setup_ceph && rbd=1
    write_configs "$rbd"
    setup_database
    register
    # a glance-api started with another config (say before the ceph store was added) would
    # not know the stores this one names
    config=$(cat "$ETC"/glance-api.conf "$ETC"/gunicorn.conf.py | sha256sum | cut -c1-16)
    if api_alive && [[ $(cat "$RUN/glance-api.config" 2>/dev/null) != "$config" ]]; then
        log "glance-api runs with another config: restarting it"
        cmd_stop
    fi
    if ! api_alive; then
        # 9>&-: glance-api must not hold start's lock for as long as it runs
        (cd "$ETC" && exec setsid "$VENV/bin/gunicorn" </dev/null >>"$LOG/glance-api.out" 2>&1 9>&-) &
        echo $! >"$RUN/glance-api.pid"
        echo "$config" >"$RUN/glance-api.config"
    fi
    local deadline=$((SECONDS + WAIT_SECONDS))
    until answers; do
        if ! api_alive; then
            # gunicorn's own log has bind errors and the tracebacks of a failed app load
            tail -n 20 "$LOG/glance-api-gunicorn.log" >&2
            die "glance-api exited (logs: $LOG/glance-api-gunicorn.log, $LOG/glance-api.log, $LOG/glance-api.out)"
        fi
        ((SECONDS < deadline)) ||
            die "glance-api does not answer on $URL after ${WAIT_SECONDS}s (logs: $LOG/glance-api.log, $LOG/glance-api-gunicorn.log)"
        sleep 0.2
    done
    local id
    id=$(ensure_image) || die "cannot upload the image $IMAGE_NAME (log: $LOG/glance-api.log)"
    echo "$id" >"$RUN/image-id"
    log "Glance up: $URL (image $IMAGE_NAME $id; stores file$( ((rbd)) && echo ", $RBD_STORE (rbd pool $RBD_POOL)"))"
}

cmd_stop() {
    api_alive || { rm -f "$RUN/glance-api.pid"; log "glance-api not running"; return 0; }
    local pid n
    pid=$(<"$RUN/glance-api.pid")
    kill -TERM -- "-$pid" 2>/dev/null || kill -TERM "$pid" 2>/dev/null || true
    for ((n = 0; n < 100; n++)); do
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.1
    done
    if kill -0 "$pid" 2>/dev/null; then
        log "glance-api (pid $pid) did not stop on TERM; killing it"
        kill -KILL -- "-$pid" 2>/dev/null || kill -KILL "$pid" 2>/dev/null || true
    fi
    rm -f "$RUN/glance-api.pid"
    log "stopped glance-api (pid $pid)"
}

cmd_status() {
    if api_alive; then
        echo "glance-api: up on $URL (pid $(<"$RUN/glance-api.pid"))"
    else
        echo "glance-api: down"
        return 1
    fi
}

cmd_env() {
    local id=
    api_alive && [[ -s $RUN/image-id ]] && id=$(<"$RUN/image-id")
    cat <<EOF
export LAMINA_GLANCE_INSTALLED=$(installed && echo 1 || echo 0)
export LAMINA_GLANCE_URL=$URL
export LAMINA_GLANCE_PYTHON=$VENV/bin/python
export LAMINA_GLANCE_LOG_DIR=$LOG
export LAMINA_GLANCE_IMAGE_NAME=$IMAGE_NAME
export LAMINA_GLANCE_IMAGE_ID=$id
export LAMINA_GLANCE_DIR=$DIR
export LAMINA_GLANCE_RBD_STORE=$([[ -s $RUN/ceph-fsid ]] && echo "$RBD_STORE")
export LAMINA_GLANCE_RBD_POOL=$RBD_POOL
export LAMINA_GLANCE_RBD_FSID=$(cat "$RUN/ceph-fsid" 2>/dev/null)
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
