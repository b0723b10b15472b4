"""lamina-manage: operator commands.

Database (read and written directly):
  lamina-manage db sync            apply schema migrations
  lamina-manage db version         show the schema version
  lamina-manage db purge --before DATE
                                   hard-delete rows soft-deleted before DATE, children first
  lamina-manage pool list          pools with capacity and claims
  lamina-manage quota check [--fix]
                                   recount quota usage from the volumes and snapshots and
                                   report (exit 1) or, with --fix, repair any drift

Running services (over RPC, each call with --timeout; a service that does not answer is
named, and the command exits 1):
  lamina-manage service list       services with their heartbeat and their live answer
                                   (version, uptime, operations in flight, pool states)
  lamina-manage service disable|enable HOST [--binary B] [--reason R]
                                   at once: the row, and the schedulers told by fanout
  lamina-manage volume ops [HOST]  operations in flight: the workers table and each volume
                                   service's own view
  lamina-manage volume cleanup HOST
                                   end a dead host's operations (as its start-up would), on
                                   the host itself when it answers, else on a live peer of
                                   the same back end
  lamina-manage pool refresh       volume services report their pools now
  lamina-manage scheduler explain [VOLUME] [--size N] [--type T]
                                   which filter rejected each pool, the weights of the rest
  lamina-manage log set LEVEL [--service B] [--host H] [--prefix P]
  lamina-manage log get [--service B] [--host H] [--prefix P]

With --aio-dir DIR the commands act on the lamina-aio whose data directory is DIR: its
SQLite file, and its services through its control socket DIR/control.sock.
"""

import os
import sys

from oslo_config import cfg

from common import config
from common.db import api as db
from common.db import migration

CONF = cfg.CONF


def db_sync():
    """Apply the schema migrations."""
    migration.db_sync()
    print("database at revision %s" % migration.db_version())


def db_version():
    """Show the schema revision."""
    print(migration.db_version())


cli_opts = [
    cfg.StrOpt("aio-dir", dest="aio_dir",
               help="Act on the lamina-aio whose data directory this is: its SQLite file "
                    "and, through its control socket there, its services."),
    cfg.IntOpt("timeout", min=1,
               help="Seconds to wait for each service's answer (default: [DEFAULT] "
                    "control_rpc_timeout)."),
]


def _fail(message):
    print("lamina-manage: %s" % message, file=sys.stderr)


def _admin():
    from common import context

    return context.get_admin_context()


def _control():
    from common import control

    return control.ControlClient(timeout=CONF.timeout)


def _no_answer(exc):
    return "no answer (%s)" % exc


def _uptime(seconds):
    seconds = int(seconds or 0)
    return "%dd%02dh%02dm%02ds" % (seconds // 86400, seconds // 3600 % 24, seconds // 60 % 60,
                                   seconds % 60) if seconds >= 86400 else \
        "%02dh%02dm%02ds" % (seconds // 3600, seconds // 60 % 60, seconds % 60)


def _services(host=None, binary=None):
    """Service rows, exact host when one matches it exactly (else Cinder's host matching),
    by Lamina's or Cinder's binary name."""
    from common import service

    rows = db.service_get_all(host=host, binary=service.lamina_binary(binary) if binary
                              else None)
    exact = [r for r in rows if r.host == host]
    return exact if host and exact else rows


def service_list():
    """Services with their heartbeat and their live answer."""
    from common import service

    rows = _services()
    answers = _control().each(rows, "status")
    fmt = "%-17s %-28s %-6s %-9s %-5s %-19s %-8s %-10s %-9s %s"
    print(fmt % ("Binary", "Host", "Zone", "Status", "State", "Updated At", "Version",
                 "Uptime", "In flight", "Answer"))
    silent = 0
    for row, answer, error in answers:
        up = service.is_up(row.heartbeat_at)
        heartbeat = row.heartbeat_at.strftime("%Y-%m-%d %H:%M:%S") if row.heartbeat_at \
            else "-"
        common_cols = (row.binary, row.host, row.availability_zone or "",
                       "disabled" if row.disabled else "enabled", "up" if up else "down",
                       heartbeat)
        if error is not None:
            silent += 1
            print(fmt % (common_cols + ("-", "-", "-", _no_answer(error))))
            continue
        print(fmt % (common_cols + (answer["version"], _uptime(answer["uptime"]),
                                    answer["in_flight_count"], "pid %s" % answer["pid"])))
        for pool in answer.get("pools") or []:
            print("    pool %s: %s, %s of %s GiB free" % (
                pool["pool"], pool["state"], pool.get("free_capacity_gb"),
                pool.get("total_capacity_gb")))
    return 1 if silent else 0


def service_set_enabled(enabled):
    from common import service
    from scheduler import rpcapi as scheduler_rpcapi

    host, binary = CONF.category.target_host, CONF.category.binary
    rows = _services(host=host, binary=binary)
    if not rows:
        _fail("no service %son host %s (see `lamina-manage service list`)"
              % ("%s " % binary if binary else "", host))
        return 1
    if len(rows) > 1:
        _fail("several services match %s (%s): name one by host@backend and --binary"
              % (host, ", ".join("%s on %s" % (r.binary, r.host) for r in rows)))
        return 1
    row = rows[0]
    values = {"disabled": not enabled,
              "disabled_reason": None if enabled else CONF.category.reason}
    db.service_update(row.host, row.binary, values)
    told = ""
    if row.binary == service.VOLUME_BINARY:
        try:
            scheduler_rpcapi.SchedulerAPI().service_changed(_admin(), row.host)
            told = "; the schedulers were told"
        except Exception as exc:
            told = ("; the schedulers could not be told (%s): they see it at their next "
                    "pool reload" % exc)
    print("%s on %s %s%s" % (row.binary, row.host, "enabled" if enabled else "disabled",
                             told))
    return 0


def service_disable():
    """Disable a service at once (the row and a fanout to the schedulers)."""
    return service_set_enabled(False)


def service_enable():
    """Enable a service at once."""
    return service_set_enabled(True)


def volume_ops():
    """Operations in flight: the workers table and each volume service's view."""
    from common import service

    host = CONF.category.target_host
    workers = db.worker_get_all(host=host) if host else db.worker_get_all()
    rows = _services(host=host, binary=service.VOLUME_BINARY) if host else \
        _services(binary=service.VOLUME_BINARY)
    views = {}
    for row, answer, error in _control().each(rows, "status"):
        views[row.host] = (answer, error)
    fmt = "%-28s %-15s %-36s %-22s %-19s %s"
    print(fmt % ("Host", "Resource type", "Resource id", "Operation", "Since", "Running"))
    listed = set()
    for worker in sorted(workers, key=lambda w: (w.host or "", w.created_at)):
        answer, error = views.get(worker.host, (None, None))
        if worker.host is None:
            running = "waits for a scheduler"
        elif answer is None:
            running = _no_answer(error) if error else "no such service"
        else:
            running = "yes" if any(op["resource_id"] == worker.resource_id
                                   for op in answer.get("in_flight") or []) else \
                "no (lost: volume cleanup ends it)"
        listed.add((worker.host, worker.resource_id))
        since = worker.updated_at or worker.created_at
        print(fmt % (worker.host or "-", worker.resource_type, worker.resource_id,
                     worker.operation, since.strftime("%Y-%m-%d %H:%M:%S"), running))
    silent = 0
    for row in rows:
        answer, error = views.get(row.host, (None, None))
        if answer is None:
            silent += 1
            print("%s: %s" % (row.host, _no_answer(error)))
            continue
        extra = [op for op in answer.get("in_flight") or []
                 if (row.host, op["resource_id"]) not in listed]
        print("%s: %d in flight in the service%s" % (
            row.host, answer["in_flight_count"],
            "; without a workers row: " + ", ".join(op["resource_id"] for op in extra)
            if extra else ""))
    return 1 if silent else 0


def _backend_names(host):
    return {p.volume_backend_name for p in db.pool_get_all(host=host)}


def volume_cleanup():
    """End a (dead) volume service's operations, as its start-up would.

    Run by the host itself when it answers, else by a live peer of the same back end."""
    from common import service
    from volume_worker import rpcapi as volume_rpcapi

    host = CONF.category.target_host
    owned = db.worker_get_all(host=host)
    control = _control()
    rows = _services(binary=service.VOLUME_BINARY)
    own = [r for r in rows if r.host == host]
    cleaner, own_error = None, None
    if own:
        _, answer, own_error = control.each(own, "status")[0]
        if answer is not None:
            cleaner = host
    if cleaner is None:
        names = _backend_names(host)
        peers = [r for r in rows if r.host != host and service.is_up(r.heartbeat_at)
                 and _backend_names(r.host) & names]
        for row, answer, _ in control.each(peers, "status"):
            if answer is not None:
                cleaner = row.host
                break
        if cleaner is None:
            _fail("%s %s; no live volume service of its back end (volume_backend_name %s) "
                  "answers to take its %d operation(s) over: start %s again (it cleans up "
                  "at start) or a volume service of the same back end"
                  % (host, _no_answer(own_error) if own else "has no service row",
                     ", ".join(sorted(names)) or "unknown", len(owned), host))
            return 1
        print("%s %s: %s takes its operations over" % (
            host, _no_answer(own_error) if own else "has no service row", cleaner))
    else:
        print("%s answers: it ends its own operations that no flow runs" % host)
    ended = volume_rpcapi.VolumeAPI().clean_up_operations(
        _admin(), cleaner, host, wait=True, timeout=max(control.timeout, 120))
    for op in ended:
        print("ended the %s of %s %s" % (op["operation"], op["resource_type"],
                                         op["resource_id"]))
    left = db.worker_get_all(host=host)
    print("%d operation(s) ended; %d still owned by %s%s" % (
        len(ended), len(left), host, " (queued or running there)" if left else ""))
    return 0


def pool_refresh():
    """Volume services report their pools now."""
    import concurrent.futures

    from common import service
    from volume_worker import rpcapi as volume_rpcapi

    rows = [r for r in _services(binary=service.VOLUME_BINARY)]
    if not rows:
        _fail("no volume service in the services table")
        return 1
    rpcapi = volume_rpcapi.VolumeAPI()
    timeout = _control().timeout

    def one(row):
        try:
            return row, rpcapi.refresh_pools(_admin(), row.host, timeout=timeout), None
        except Exception as exc:
            return row, None, exc

    silent = 0
    with concurrent.futures.ThreadPoolExecutor(max_workers=min(16, len(rows))) as pool:
        for row, pools, error in pool.map(one, rows):
            if error is not None:
                silent += 1
                print("%s: %s" % (row.host, _no_answer(_named(error, row, timeout))))
                continue
            print("%s: reported %d pool(s)" % (row.host, len(pools)))
            for p in pools:
                print("    %s: %s, %s of %s GiB free" % (p["pool"], p["state"],
                                                        p.get("free_capacity_gb"),
                                                        p.get("total_capacity_gb")))
    return 1 if silent else 0


def _named(error, row, timeout):
    import oslo_messaging as messaging

    from common import control

    if isinstance(error, messaging.MessagingTimeout):
        return control.ServiceNotAnswering(binary=row.binary, host=row.host, timeout=timeout,
                                           reason="MessagingTimeout")
    return error


def pool_list():
    """Pools with capacity and claims (from the database)."""
    fmt = "%-40s %10s %10s %10s %10s %8s"
    print(fmt % ("Pool", "Total GiB", "Free GiB", "Usable GiB", "Claimed", "Volumes"))
    for pool in db.pool_get_all():
        print(fmt % (pool.name, pool.total_capacity_gb, pool.free_capacity_gb,
                     pool.usable_capacity_gb, pool.allocated_capacity_gb, pool.volume_count))


def scheduler_explain():
    """Each filter's verdict on each pool, the weights of the rest."""
    import oslo_messaging as messaging

    from scheduler import rpcapi as scheduler_rpcapi

    volume_id, size, vtype = CONF.category.volume, CONF.category.size, CONF.category.type
    if not volume_id and size is None:
        _fail("give a VOLUME id, or --size N (and --type T) for a new volume")
        return 2
    rpcapi = scheduler_rpcapi.SchedulerAPI()
    explain = getattr(rpcapi, "explain", None)
    if explain is None:
        _fail("this release's scheduler RPC API has no explain method")
        return 1
    try:
        answer = explain(_admin(), volume_id=volume_id, size=size, volume_type=vtype)
    except messaging.MessagingTimeout as exc:
        _fail("no scheduler answered the explain request (%s)" % exc)
        return 1
    request = answer.get("request") or {}
    print("Request: " + ", ".join("%s=%s" % item for item in sorted(request.items())))
    fmt = "%-40s %-6s %-28s %-8s %s"
    print(fmt % ("Pool", "Passed", "Rejected by", "Weight", "Reason"))
    for pool in answer.get("pools") or []:
        weight = pool.get("weight")
        print(fmt % (pool["pool"], "yes" if pool.get("passed") else "no",
                     pool.get("rejected_by") or "-",
                     "%.3f" % weight if weight is not None else "-", pool.get("reason") or ""))
    print("Chosen: %s (%s)" % (answer.get("chosen") or "none",
                               "the decision recorded at its placement" if answer.get("recorded")
                               else "a dry run now: nothing claimed"))
    return 0


def _log_targets():
    return _services(host=CONF.category.target_host, binary=CONF.category.service_binary)


def log_set():
    """Set the log level of running services' loggers."""
    from common import control

    level = control.validate_level(CONF.category.level)
    rows = _log_targets()
    if not rows:
        _fail("no service matches")
        return 1
    silent = 0
    for row, answer, error in _control().each(rows, "set_log_levels", level=level,
                                              prefix=CONF.category.prefix):
        if error is not None:
            silent += 1
            print("%-17s %-28s %s" % (row.binary, row.host, _no_answer(error)))
        else:
            print("%-17s %-28s %s: %d logger(s) under %r" % (
                row.binary, row.host, level, answer["changed"], CONF.category.prefix or ""))
    return 1 if silent else 0


def log_get():
    """Show the log levels of running services' loggers."""
    rows = _log_targets()
    silent = 0
    for row, answer, error in _control().each(rows, "get_log_levels",
                                              prefix=CONF.category.prefix):
        if error is not None:
            silent += 1
            print("%s on %s: %s" % (row.binary, row.host, _no_answer(error)))
            continue
        print("%s on %s:" % (row.binary, row.host))
        for name, level in sorted(answer["levels"].items()):
            print("    %-50s %s" % (name, level))
    return 1 if silent else 0


def db_purge():
    """Hard-delete rows soft-deleted before --before, children first."""
    import datetime

    from common.db import purge

    try:
        before = datetime.datetime.fromisoformat(CONF.category.before)
    except ValueError:
        _fail("--before takes a date or time like 2026-01-31 or 2026-01-31T12:00:00 (UTC), "
              "not %r" % CONF.category.before)
        return 2
    if before.tzinfo is not None:
        before = before.astimezone(datetime.timezone.utc).replace(tzinfo=None)
    total = 0
    for table, count in purge.purge_deleted(before):
        total += count
        print("%-30s %d row(s) purged" % (table, count))
    print("%d row(s) deleted before %s purged" % (total, before.isoformat(sep=" ")))
    return 0


def quota_check():
    """Recount quota usage; report (exit 1) or --fix any drift."""
    from common import quota

    fix = CONF.category.fix
    drift = quota.check(fix=fix)
    if not drift:
        print("quota usage matches the resources: no drift")
        return 0
    fmt = "%-34s %-30s %10s %10s"
    print(fmt % ("Project", "Resource", "In use", "Counted"))
    for project_id, resource, in_use, counted in drift:
        print(fmt % (project_id, resource, in_use, counted))
    if fix:
        print("%d usage figure(s) repaired" % len(drift))
        return 0
    print("%d usage figure(s) drifted; run with --fix to repair" % len(drift))
    return 1


COMMANDS = {
    ("db", "sync"): db_sync,
    ("db", "version"): db_version,
    ("db", "purge"): db_purge,
    ("service", "list"): service_list,
    ("service", "disable"): service_disable,
    ("service", "enable"): service_enable,
    ("volume", "ops"): volume_ops,
    ("volume", "cleanup"): volume_cleanup,
    ("pool", "list"): pool_list,
    ("pool", "refresh"): pool_refresh,
    ("scheduler", "explain"): scheduler_explain,
    ("log", "set"): log_set,
    ("log", "get"): log_get,
    ("quota", "check"): quota_check,
}
# Commands that read or write only the database (the others talk to the services).
DB_ONLY = {("db", "sync"), ("db", "version"), ("db", "purge"), ("pool", "list"),
           ("quota", "check")}


def _add_arguments(command, sub):
    if command == ("quota", "check"):
        sub.add_argument("--fix", action="store_true",
                         help="set each drifted usage to the recounted figure")
    elif command == ("db", "purge"):
        sub.add_argument("--before", required=True,
                         help="purge rows soft-deleted before this UTC date or time "
                              "(ISO 8601, e.g. 2026-01-31)")
    elif command in (("service", "disable"), ("service", "enable")):
        sub.add_argument("target_host", metavar="HOST",
                         help="the service's host (host@backend for a volume service)")
        sub.add_argument("--binary", help="the service's binary (lamina-volume, ...; "
                                          "Cinder's names too) when several run on host")
        if command == ("service", "disable"):
            sub.add_argument("--reason", help="why, shown in os-services")
    elif command == ("volume", "ops"):
        sub.add_argument("target_host", metavar="HOST", nargs="?",
                         help="one volume service (host@backend)")
    elif command == ("volume", "cleanup"):
        sub.add_argument("target_host", metavar="HOST",
                         help="the volume service (host@backend) whose operations to end")
    elif command == ("scheduler", "explain"):
        sub.add_argument("volume", nargs="?", help="a volume's id: explain its placement "
                                                   "as a new request")
        sub.add_argument("--size", type=int, help="GiB of a new volume to explain")
        sub.add_argument("--type", help="volume type name or id of the new volume")
    elif command in (("log", "set"), ("log", "get")):
        if command == ("log", "set"):
            sub.add_argument("level", help="DEBUG, INFO, WARNING or ERROR")
        sub.add_argument("--service", dest="service_binary",
                         help="only services of this binary (lamina-volume, ...)")
        sub.add_argument("--host", dest="target_host", help="only services on this host")
        sub.add_argument("--prefix", help="only loggers whose name starts with this "
                                          "(e.g. volume_worker); default: all")


def add_command_parsers(subparsers):
    for category in sorted({c for c, _ in COMMANDS}):
        parser = subparsers.add_parser(category)
        actions = parser.add_subparsers(dest="action")
        actions.required = True
        for cat, action in COMMANDS:
            if cat == category:
                # the first line of the command's docstring, else its name
                doc = (COMMANDS[(cat, action)].__doc__ or "").strip().split("\n")[0]
                _add_arguments((cat, action), actions.add_parser(action, help=doc or None))


category_opt = cfg.SubCommandOpt("category", title="Command categories",
                                 handler=add_command_parsers)


def configuration_problem():
    """Why the command cannot run with this configuration, or None. Without a config file
    the database would be the default ./lamina.sqlite, a file SQLite would create empty
    wherever the operator stands; with a SQLite file that does not exist only db sync may
    make it. A command that talks to the services needs [DEFAULT] transport_url (or
    --aio-dir)."""
    import oslo_messaging as messaging

    from common.db import session

    command = (CONF.category.name, CONF.category.action)
    connection = CONF.database.connection
    default = next(o.default for o in session.database_opts if o.dest == "connection")
    if not CONF.config_file and connection == default and not CONF.aio_dir:
        return ("no configuration file was found (looked for lamina.conf in ~/.lamina, "
                "~/, /etc/lamina, /etc): give --config-file PATH, a file that sets "
                "[database] connection to the database of the deployment (and [DEFAULT] "
                "transport_url to its RabbitMQ), or --aio-dir DIR for a lamina-aio; "
                "nothing was done")
    if CONF.aio_dir and not os.path.isdir(CONF.aio_dir):
        return "--aio-dir %s is not a directory; nothing was done" % CONF.aio_dir
    if command not in DB_ONLY and not CONF.aio_dir:
        messaging.TransportURL.parse(CONF)  # registers transport_url
        if CONF.transport_url in (None, "", "rabbit://"):
            return ("`%s %s` talks to the running services: set [DEFAULT] transport_url "
                    "(rabbit://user:password@host:5672/vhost) in the configuration file, "
                    "or give --aio-dir DIR for a lamina-aio; nothing was done" % command)
    if connection.startswith("sqlite:///") and (CONF.category.name, CONF.category.action) \
            != ("db", "sync"):
        path = connection[len("sqlite:///"):]
        if path and not path.startswith(":") and not os.path.exists(path):
            return ("[database] connection names the SQLite file %s, which does not exist: "
                    "check the setting, or create the schema with `lamina-manage db sync`; "
                    "nothing was done" % path)
    return None


def use_aio(data_dir):
    """Act on the lamina-aio of data_dir: its SQLite file (unless the configuration names
    a database) and its services through its control socket."""
    from common import control, rpc

    data_dir = os.path.abspath(data_dir)
    CONF.set_default("connection", "sqlite:///" + os.path.join(data_dir, "lamina.sqlite"),
                     group="database")
    rpc.use_relay(control.relay_client_factory(data_dir))


def main(argv=None):
    from common import exception

    CONF.import_opt("control_rpc_timeout", "common.control")

    CONF.register_cli_opt(category_opt)
    CONF.register_cli_opts(cli_opts)
    config.parse_args(sys.argv[1:] if argv is None else argv)
    if CONF.aio_dir:
        use_aio(CONF.aio_dir)
    problem = configuration_problem()
    if problem:
        print("lamina-manage: %s" % problem, file=sys.stderr)
        return 2
    config.setup_logging()
    try:
        return COMMANDS[(CONF.category.name, CONF.category.action)]()
    except exception.LaminaException as exc:
        # a service that did not answer, an aio that is not running, bad input: said plainly
        _fail(str(exc))
        return 1


if __name__ == "__main__":
    sys.exit(main())
