#!/usr/bin/env bash
# Development services for Lamina's integration tests and benchmarks, all on 127.0.0.1:
#
#   RabbitMQ    5672  guest/guest
#   MariaDB     3306  root, no password, over TCP
#   PostgreSQL  5432  trust auth over TCP for postgres (and a superuser role `root`)
#
# usage: deploy/dev-services.sh [start|status] [rabbitmq|mariadb|postgresql ...]
#
#   start   (default) leave a service alone when its port answers (only checking, and if need
#           be fixing, the login above); otherwise install its Debian package when missing and
#           start it without systemd; then wait until it accepts the login. Idempotent.
#   status  print up/down per service; exits 1 when any is down.
#
# Needs root to install or start anything. Environment overrides (tests of this script):
#   LAMINA_RABBIT_PORT, LAMINA_MARIADB_PORT, LAMINA_PG_PORT      ports (5672, 3306, 5432)
#   LAMINA_MARIADB_DEFAULTS_FILE   my.cnf passed as --defaults-file to mariadbd and clients
#   LAMINA_MARIADB_MAX_CONNECTIONS raised to at least this at start (600; the default 151
#                                  runs out under the benchmarks' clusters)
#   LAMINA_SERVICES_WAIT           seconds to wait for each service (90)
#   LAMINA_SERVICES_LOGDIR         where start-up output goes (/tmp/lamina-dev-services)
set -euo pipefail

RABBIT_PORT=${LAMINA_RABBIT_PORT:-5672}
RABBIT_USER=guest
RABBIT_PASSWORD=guest
MARIADB_PORT=${LAMINA_MARIADB_PORT:-3306}
MARIADB_MAX_CONNECTIONS=${LAMINA_MARIADB_MAX_CONNECTIONS:-600}
PG_PORT=${LAMINA_PG_PORT:-5432}
MARIADB_DEFAULTS_FILE=${LAMINA_MARIADB_DEFAULTS_FILE:-}
WAIT_SECONDS=${LAMINA_SERVICES_WAIT:-90}
LOGDIR=${LAMINA_SERVICES_LOGDIR:-/tmp/lamina-dev-services}
ALL_SERVICES=(rabbitmq mariadb postgresql)
export DEBIAN_FRONTEND=noninteractive

declare -A PACKAGE=([rabbitmq]=rabbitmq-server [mariadb]=mariadb-server [postgresql]=postgresql)
declare -A PORT=([rabbitmq]=$RABBIT_PORT [mariadb]=$MARIADB_PORT [postgresql]=$PG_PORT)

# ---------------------------------------------------------------------------- helpers

die() {
    echo "$*" >&2
    exit 1
}

# port_open PORT: something accepts TCP connections on 127.0.0.1:PORT.
port_open() {
    timeout 2 bash -c "exec 3<>/dev/tcp/127.0.0.1/$1" 2>/dev/null
}

# wait_until SECONDS CMD...: run CMD every second until it succeeds; fail after SECONDS.
wait_until() {
    local deadline=$((SECONDS + $1))
    shift
    until "$@" >/dev/null 2>&1; do
        ((SECONDS < deadline)) || return 1
        sleep 1
    done
}

package_installed() {
    dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q 'install ok installed'
}

need_root() {
    [[ $EUID -eq 0 ]] || die "$1: must run as root to $2"
}

# run_logged NAME CMD...: run CMD with its output in $LOGDIR/NAME.log (a daemon that keeps
# our stdout open would otherwise hang whoever reads it); show the log when CMD fails.
run_logged() {
    local log="$LOGDIR/$1.log"
    shift
    mkdir -p "$LOGDIR"
    if ! "$@" </dev/null >"$log" 2>&1; then
        tail -n 20 "$log" >&2
        return 1
    fi
}

# show_log_tail FILE...: the end of the first readable file, for a failure message.
show_log_tail() {
    local f
    for f in "$@"; do
        if [[ -r $f ]]; then
            echo "--- last lines of $f:" >&2
            tail -n 20 "$f" >&2
            return 0
        fi
    done
}

# ---------------------------------------------------------------------------- RabbitMQ

# rabbit_login PORT: a full AMQP 0-9-1 handshake as $RABBIT_USER/$RABBIT_PASSWORD on vhost "/"
# (connection start, PLAIN login, tune, open "/", close). Falls back to rabbitmqctl without
# python3.
rabbit_login() {
    local py
    py=$(command -v /usr/bin/python3 || command -v python3 || true)
    if [[ -z $py ]]; then
        rabbitmqctl -q authenticate_user "$RABBIT_USER" "$RABBIT_PASSWORD" >/dev/null 2>&1
        return
    fi
    "$py" - "$1" "$RABBIT_USER" "$RABBIT_PASSWORD" <<'PYEOF'
import socket, struct, sys


def recv(sock, n):
    data = b""
    while len(data) < n:
        chunk = sock.recv(n - len(data))
        if not chunk:
            raise OSError("connection closed by the broker")
        data += chunk
    return data


def method(sock):
    while True:  # skip heartbeat and other non-method frames
        ftype, _, size = struct.unpack(">BHI", recv(sock, 7))
        payload = recv(sock, size + 1)[:-1]
        if ftype == 1:
            return struct.unpack(">HH", payload[:4]), payload[4:]


def send(sock, cls, meth, args=b""):
    payload = struct.pack(">HH", cls, meth) + args
    sock.sendall(struct.pack(">BHI", 1, 0, len(payload)) + payload + b"\xce")


def shortstr(s):
    return bytes([len(s)]) + s


def login(port, user, password):
    with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
        sock.sendall(b"AMQP\x00\x00\x09\x01")
        if method(sock)[0] != (10, 10):
            return "not an AMQP 0-9-1 broker"
        response = b"\x00" + user + b"\x00" + password
        send(sock, 10, 11, struct.pack(">I", 0) + shortstr(b"PLAIN")
             + struct.pack(">I", len(response)) + response + shortstr(b"en_US"))
        cm, args = method(sock)
        if cm != (10, 30):
            return "login refused"
        channel_max, frame_max, _ = struct.unpack(">HIH", args[:8])
        send(sock, 10, 31, struct.pack(">HIH", channel_max, frame_max, 0))
        send(sock, 10, 40, shortstr(b"/") + shortstr(b"") + b"\x00")
        if method(sock)[0] != (10, 41):
            return "vhost / refused"
        send(sock, 10, 50, struct.pack(">H", 200) + shortstr(b"") + struct.pack(">HH", 0, 0))
        method(sock)
    return None


try:
    error = login(int(sys.argv[1]), sys.argv[2].encode(), sys.argv[3].encode())
except OSError as exc:  # refused, reset (a refused login), timeout
    error = str(exc) or type(exc).__name__
if error:
    sys.exit("AMQP login as %s on 127.0.0.1:%s: %s" % (sys.argv[2], sys.argv[1], error))
PYEOF
}

# Give guest/guest full rights on "/" (guest may only log in from localhost: the default).
rabbit_fix_guest() {
    need_root rabbitmq "fix the guest user"
    {
        rabbitmqctl -q add_user "$RABBIT_USER" "$RABBIT_PASSWORD" >/dev/null 2>&1 ||
            rabbitmqctl -q change_password "$RABBIT_USER" "$RABBIT_PASSWORD" >/dev/null
    } && rabbitmqctl -q set_permissions -p / "$RABBIT_USER" '.*' '.*' '.*' >/dev/null
}

rabbitmq_start() {
    local did=()
    if port_open "$RABBIT_PORT"; then
        did+=("already running on 127.0.0.1:$RABBIT_PORT")
    else
        need_root rabbitmq "start it"
        run_logged rabbitmq-start rabbitmq-server -detached ||
            die "rabbitmq: 'rabbitmq-server -detached' failed"
        did+=("started (rabbitmq-server -detached)")
        if ! wait_until "$WAIT_SECONDS" port_open "$RABBIT_PORT"; then
            show_log_tail "$LOGDIR/rabbitmq-start.log"
            die "rabbitmq: port $RABBIT_PORT not answering after ${WAIT_SECONDS}s" \
                "(logs in /var/log/rabbitmq/)"
        fi
    fi
    if ! rabbit_login "$RABBIT_PORT" 2>/dev/null; then
        # Booting (the port opens before the broker takes logins), or guest is missing/changed.
        timeout "$WAIT_SECONDS" rabbitmqctl -q await_startup >/dev/null 2>&1 || true
        if ! wait_until 2 rabbit_login "$RABBIT_PORT"; then
            rabbit_fix_guest || die "rabbitmq: could not reset guest/guest with rabbitmqctl"
            rabbit_login "$RABBIT_PORT" || die "rabbitmq: guest/guest login still refused"
            did+=("reset guest/guest and its rights on /")
        fi
    fi
    did+=("guest/guest login ok")
    report rabbitmq "${did[@]}"
}

# ---------------------------------------------------------------------------- MariaDB

mariadb_defaults() {
    if [[ -n $MARIADB_DEFAULTS_FILE ]]; then
        printf '%s\n' "--defaults-file=$MARIADB_DEFAULTS_FILE"
    fi
}

mariadb_client() {
    local client defaults
    client=$(command -v mariadb || command -v mysql) || return 1
    defaults=$(mariadb_defaults)
    "$client" ${defaults:+"$defaults"} "$@"
}

# mariadb_option NAME DEFAULT: an option of mariadbd from its config files.
mariadb_option() {
    local defaults value
    defaults=$(mariadb_defaults)
    value=$(my_print_defaults ${defaults:+"$defaults"} --mysqld 2>/dev/null |
        sed -n "s/^--$1=//p" | tail -n 1)
    echo "${value:-$2}"
}

mariadb_tcp_login() {
    mariadb_client --protocol=TCP -h 127.0.0.1 -P "$MARIADB_PORT" -u root \
        --connect-timeout=5 -N -s -e 'select 1' >/dev/null 2>&1
}

# Let root in over TCP from 127.0.0.1 with no password, whether or not the server resolves
# 127.0.0.1 to localhost (skip-name-resolve). Runs over the socket as the OS root (unix_socket).
mariadb_fix_root() {
    local socket
    need_root mariadb "fix root's login"
    socket=$(mariadb_option socket /run/mysqld/mysqld.sock)
    mariadb_client --protocol=SOCKET -S "$socket" -u root <<'SQL'
ALTER USER 'root'@'localhost' IDENTIFIED VIA unix_socket OR mysql_native_password USING PASSWORD('');
CREATE USER IF NOT EXISTS 'root'@'127.0.0.1' IDENTIFIED BY '';
ALTER USER 'root'@'127.0.0.1' IDENTIFIED BY '';
GRANT ALL PRIVILEGES ON *.* TO 'root'@'127.0.0.1' WITH GRANT OPTION;
SQL
}

mariadb_start() {
    local did=() datadir socket pidfile errlog defaults dir
    if port_open "$MARIADB_PORT"; then
        did+=("already running on 127.0.0.1:$MARIADB_PORT")
    else
        need_root mariadb "start it"
        datadir=$(mariadb_option datadir /var/lib/mysql)
        socket=$(mariadb_option socket /run/mysqld/mysqld.sock)
        pidfile=$(mariadb_option pid-file /run/mysqld/mysqld.pid)
        errlog=$(mariadb_option log-error "")
        # No systemd-tmpfiles here: make the run and log directories ourselves.
        for dir in "$(dirname "$socket")" "$(dirname "$pidfile")" ${errlog:+"$(dirname "$errlog")"}; do
            [[ -d $dir ]] || install -d -o mysql -g mysql -m 0755 "$dir"
        done
        defaults=$(mariadb_defaults)
        if [[ ! -d $datadir/mysql ]]; then
            run_logged mariadb-install-db \
                mariadb-install-db ${defaults:+"$defaults"} --user=mysql --datadir="$datadir" ||
                die "mariadb: mariadb-install-db failed"
            did+=("initialised $datadir")
        fi
        mkdir -p "$LOGDIR"
        start-stop-daemon --start --oknodo --background --pidfile "$pidfile" \
            --output "$LOGDIR/mariadbd.log" --exec /usr/sbin/mariadbd -- \
            ${defaults:+"$defaults"} --user=mysql </dev/null >/dev/null ||
            die "mariadb: start-stop-daemon failed"
        did+=("started (start-stop-daemon /usr/sbin/mariadbd)")
        if ! wait_until "$WAIT_SECONDS" port_open "$MARIADB_PORT"; then
            show_log_tail ${errlog:+"$errlog"} "$LOGDIR/mariadbd.log"
            die "mariadb: port $MARIADB_PORT not answering after ${WAIT_SECONDS}s"
        fi
    fi
    if ! mariadb_tcp_login; then
        mariadb_fix_root || die "mariadb: could not fix root's login over the socket"
        mariadb_tcp_login || die "mariadb: root still cannot log in over TCP"
        did+=("let root in over TCP with no password")
    fi
    did+=("root login over TCP ok")
    # Every Lamina process pools up to 20 connections, a test cluster runs several and the
    # benchmark runs real Cinder beside them: MariaDB's default of 151 runs out.
    local max
    max=$(mariadb_client --protocol=TCP -h 127.0.0.1 -P "$MARIADB_PORT" -u root \
        --connect-timeout=5 -N -s -e 'select @@global.max_connections' 2>/dev/null)
    if [[ -n $max && $max -lt $MARIADB_MAX_CONNECTIONS ]]; then
        mariadb_client --protocol=TCP -h 127.0.0.1 -P "$MARIADB_PORT" -u root \
            --connect-timeout=5 -e "SET GLOBAL max_connections = $MARIADB_MAX_CONNECTIONS" &&
            did+=("max_connections $max -> $MARIADB_MAX_CONNECTIONS (until it restarts)")
    fi
    report mariadb "${did[@]}"
}

# ---------------------------------------------------------------------------- PostgreSQL

pg_psql() {
    PGCONNECT_TIMEOUT=5 psql -h 127.0.0.1 -p "$PG_PORT" -U postgres -d postgres -w -X -A -t -q "$@"
}

pg_login() {
    pg_psql -c 'select 1' >/dev/null 2>&1
}

# pg_cluster_for_port PORT: "version cluster" of the Debian cluster configured on PORT.
pg_cluster_for_port() {
    command -v pg_lsclusters >/dev/null || return 0
    pg_lsclusters -h 2>/dev/null | awk -v port="$1" '$3 == port { print $1, $2; exit }'
}

# pg_hba_ensure_trust FILE: make `host all all 127.0.0.1/32 trust` the first rule of FILE
# (pg_hba.conf is first match wins). Prints "changed" when it edited the file.
pg_hba_ensure_trust() {
    local file=$1 line='host all all 127.0.0.1/32 trust' tmp
    if awk '!/^[[:space:]]*(#|$)/ { ok = ($1 == "host" && $2 == "all" && $3 == "all" &&
            $4 == "127.0.0.1/32" && $5 == "trust" && NF == 5); exit } END { exit !ok }' "$file"; then
        return 0
    fi
    tmp=$(mktemp "$file.XXXXXX")
    awk -v line="$line" '
        !done && !/^[[:space:]]*(#|$)/ { print "# Added by lamina deploy/dev-services.sh"; print line; done = 1 }
        { print }
        END { if (!done) { print "# Added by lamina deploy/dev-services.sh"; print line } }' \
        "$file" >"$tmp"
    chown --reference="$file" "$tmp" 2>/dev/null || true
    chmod --reference="$file" "$tmp"
    mv "$tmp" "$file"
    echo changed
}

postgresql_start() {
    local did=() vc ver cluster changed
    vc=$(pg_cluster_for_port "$PG_PORT")
    if port_open "$PG_PORT"; then
        did+=("already running on 127.0.0.1:$PG_PORT")
    else
        need_root postgresql "start it"
        if [[ -z $vc ]]; then
            ver=$(find /etc/postgresql /usr/lib/postgresql -mindepth 1 -maxdepth 1 -printf '%f\n' \
                2>/dev/null | grep -E '^[0-9.]+$' | sort -uV | tail -n 1)
            [[ -n $ver ]] || die "postgresql: no PostgreSQL version installed"
            [[ ! -e /etc/postgresql/$ver/main ]] ||
                die "postgresql: cluster $ver/main exists but not on port $PG_PORT;" \
                    "set its port in /etc/postgresql/$ver/main/postgresql.conf"
            run_logged pg_createcluster pg_createcluster "$ver" main --port "$PG_PORT" ||
                die "postgresql: pg_createcluster $ver main failed"
            vc="$ver main"
            did+=("created cluster $ver/main")
        fi
        read -r ver cluster <<<"$vc"
        if ! pg_ctlcluster --skip-systemctl-redirect "$ver" "$cluster" status >/dev/null 2>&1; then
            run_logged pg_ctlcluster \
                pg_ctlcluster --skip-systemctl-redirect "$ver" "$cluster" start ||
                die "postgresql: pg_ctlcluster $ver $cluster start failed"
        fi
        did+=("started cluster $ver/$cluster (pg_ctlcluster)")
        if ! wait_until "$WAIT_SECONDS" port_open "$PG_PORT"; then
            show_log_tail "/var/log/postgresql/postgresql-$ver-$cluster.log"
            die "postgresql: port $PG_PORT not answering after ${WAIT_SECONDS}s"
        fi
    fi
    # Accepting connections (no login needed); a login failing after that is pg_hba.conf.
    if command -v pg_isready >/dev/null &&
        ! wait_until "$WAIT_SECONDS" pg_isready -q -h 127.0.0.1 -p "$PG_PORT" -t 5; then
        die "postgresql: 127.0.0.1:$PG_PORT answers but does not accept connections" \
            "after ${WAIT_SECONDS}s"
    fi
    if ! pg_login; then
        [[ -n $vc ]] || die "postgresql: postgres cannot log in over TCP and no Debian cluster" \
            "is configured on port $PG_PORT to fix; add 'host all all 127.0.0.1/32 trust'" \
            "at the top of its pg_hba.conf"
        need_root postgresql "edit pg_hba.conf"
        read -r ver cluster <<<"$vc"
        changed=$(pg_hba_ensure_trust "/etc/postgresql/$ver/$cluster/pg_hba.conf")
        run_logged pg_reload pg_ctlcluster --skip-systemctl-redirect "$ver" "$cluster" reload ||
            die "postgresql: reload of $ver/$cluster failed"
        wait_until 10 pg_login || die "postgresql: postgres still cannot log in over TCP"
        did+=("${changed:+added 127.0.0.1/32 trust to pg_hba.conf and }reloaded")
    fi
    did+=("trust login for postgres ok")
    # Tests may connect as root (the OS user's name), to its own database by default.
    if [[ -z $(pg_psql -c "select 1 from pg_roles where rolname = 'root'") ]]; then
        pg_psql -c 'CREATE ROLE root SUPERUSER LOGIN' >/dev/null
        did+=("created role root")
    else
        did+=("role root present")
    fi
    if [[ -z $(pg_psql -c "select 1 from pg_database where datname = 'root'") ]]; then
        pg_psql -c 'CREATE DATABASE root OWNER root' >/dev/null
        did+=("created database root")
    fi
    report postgresql "${did[@]}"
}

# ---------------------------------------------------------------------------- main

report() {
    local name=$1 out
    shift
    out=$(printf '%s; ' "$@")
    printf '%-11s %s\n' "$name:" "${out%; }"
}

install_missing() {
    local svc missing=()
    for svc in "$@"; do
        port_open "${PORT[$svc]}" && continue
        package_installed "${PACKAGE[$svc]}" || missing+=("${PACKAGE[$svc]}")
    done
    ((${#missing[@]})) || return 0
    need_root dev-services "install ${missing[*]}"
    echo "installing ${missing[*]} (apt-get)"
    run_logged apt-get-update apt-get update -q || die "apt-get update failed"
    run_logged apt-get-install apt-get install -y -q --no-install-recommends "${missing[@]}" ||
        die "apt-get install ${missing[*]} failed"
}

cmd_start() {
    local svc rc failed=()
    install_missing "$@"
    for svc in "$@"; do
        # A subshell per service: `set -e` holds inside it, and one failure does not stop
        # the others from starting.
        set +e
        ("${svc}_start")
        rc=$?
        set -e
        if ((rc != 0)); then
            printf '%-11s %s\n' "$svc:" "FAILED (see above)"
            failed+=("$svc")
        fi
    done
    ((${#failed[@]} == 0))
}

# svc_login SERVICE: the login check of SERVICE (port assumed open).
svc_login() {
    case $1 in
        rabbitmq) rabbit_login "$RABBIT_PORT" >/dev/null 2>&1 ;;
        mariadb) mariadb_tcp_login ;;
        postgresql) pg_login ;;
    esac
}

cmd_status() {
    local svc down=0
    for svc in "$@"; do
        if ! port_open "${PORT[$svc]}"; then
            printf '%-11s down (nothing on 127.0.0.1:%s)\n' "$svc:" "${PORT[$svc]}"
            down=1
        elif ! svc_login "$svc"; then
            printf '%-11s down (127.0.0.1:%s answers but the login fails)\n' "$svc:" "${PORT[$svc]}"
            down=1
        else
            printf '%-11s up (127.0.0.1:%s)\n' "$svc:" "${PORT[$svc]}"
        fi
    done
    return "$down"
}

main() {
    local cmd=${1:-start} svc
    (($#)) && shift
    (($#)) || set -- "${ALL_SERVICES[@]}"
    for svc in "$@"; do
        [[ -n ${PACKAGE[$svc]:-} ]] || die "unknown service '$svc' (one of: ${ALL_SERVICES[*]})"
    done
    case $cmd in
        start) cmd_start "$@" ;;
        status) cmd_status "$@" ;;
        -h | --help | help) awk 'NR > 1 && /^#/ { sub(/^# ?/, ""); print; next } NR > 1 { exit }' "$0" ;;
        *) die "usage: $0 [start|status] [${ALL_SERVICES[*]}]" ;;
    esac
}

# Sourcing the file (tests of its helpers) defines the functions without running anything.
if [[ ${BASH_SOURCE[0]} == "$0" ]]; then
    main "$@"
fi
