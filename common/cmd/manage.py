"""lamina-manage: operator commands.

  lamina-manage db sync            apply schema migrations
  lamina-manage db version         show the schema version
  lamina-manage service list       services with their state (up/down)
  lamina-manage pool list          pools with capacity and claims
  lamina-manage quota check [--fix]
                                   recount quota usage from the volumes and snapshots and
                                   report (exit 1) or, with --fix, repair any drift
"""

import os
import sys

from oslo_config import cfg

from common import config
from common.db import api as db
from common.db import migration

CONF = cfg.CONF


def db_sync():
    migration.db_sync()
    print("database at revision %s" % migration.db_version())


def db_version():
    print(migration.db_version())


def service_list():
    from common import service

    fmt = "%-20s %-32s %-10s %-9s %-6s %s"
    print(fmt % ("Binary", "Host", "Zone", "Status", "State", "Updated At"))
    for row in db.service_get_all():
        up = service.is_up(row.heartbeat_at)
        print(fmt % (row.binary, row.host, row.availability_zone or "",
                     "disabled" if row.disabled else "enabled", "up" if up else "down",
                     row.heartbeat_at))


def pool_list():
    fmt = "%-40s %10s %10s %10s %10s %8s"
    print(fmt % ("Pool", "Total GiB", "Free GiB", "Usable GiB", "Claimed", "Volumes"))
    for pool in db.pool_get_all():
        print(fmt % (pool.name, pool.total_capacity_gb, pool.free_capacity_gb,
                     pool.usable_capacity_gb, pool.allocated_capacity_gb, pool.volume_count))


def quota_check():
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
    ("service", "list"): service_list,
    ("pool", "list"): pool_list,
    ("quota", "check"): quota_check,
}


def add_command_parsers(subparsers):
    for category in sorted({c for c, _ in COMMANDS}):
        parser = subparsers.add_parser(category)
        actions = parser.add_subparsers(dest="action")
        actions.required = True
        for cat, action in COMMANDS:
            if cat == category:
                sub = actions.add_parser(action)
                if (cat, action) == ("quota", "check"):
                    sub.add_argument("--fix", action="store_true",
                                     help="set each drifted usage to the recounted figure")


category_opt = cfg.SubCommandOpt("category", title="Command categories",
                                 handler=add_command_parsers)


def configuration_problem():
    """Why the command cannot run with this configuration, or None. Without a config file
    the database would be the default ./lamina.sqlite, a file SQLite would create empty
    wherever the operator stands; with a SQLite file that does not exist only db sync may
    make it."""
    from common.db import session

    connection = CONF.database.connection
    default = next(o.default for o in session.database_opts if o.dest == "connection")
    if not CONF.config_file and connection == default:
        return ("no configuration file was found (looked for lamina.conf in ~/.lamina, "
                "~/, /etc/lamina, /etc): give --config-file PATH, a file that sets "
                "[database] connection to the database of the deployment; nothing was done")
    if connection.startswith("sqlite:///") and (CONF.category.name, CONF.category.action) \
            != ("db", "sync"):
        path = connection[len("sqlite:///"):]
        if path and not path.startswith(":") and not os.path.exists(path):
            return ("[database] connection names the SQLite file %s, which does not exist: "
                    "check the setting, or create the schema with `lamina-manage db sync`; "
                    "nothing was done" % path)
    return None


def main(argv=None):
    CONF.register_cli_opt(category_opt)
    config.parse_args(sys.argv[1:] if argv is None else argv)
    problem = configuration_problem()
    if problem:
        print("lamina-manage: %s" % problem, file=sys.stderr)
        return 2
    config.setup_logging()
    return COMMANDS[(CONF.category.name, CONF.category.action)]()


if __name__ == "__main__":
    sys.exit(main())
