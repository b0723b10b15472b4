"""lamina-scheduler: the scheduler service process."""

import sys

from oslo_config import cfg

from common import service
from scheduler import rpcapi as scheduler_rpcapi
from scheduler.manager import SchedulerManager

CONF = cfg.CONF


def build_service():
    return service.Service("lamina-scheduler", scheduler_rpcapi.TOPIC, CONF.host,
                           SchedulerManager(CONF.host), scheduler_rpcapi.SchedulerAPI.VERSION)


def main(argv=None):
    service.serve(lambda: [build_service()], sys.argv[1:] if argv is None else argv)


if __name__ == "__main__":
    main()
