"""RPC endpoint of the backup service. Skeleton: it heartbeats and answers no methods yet;
backup and restore flows arrive with the backup issue."""

import oslo_messaging as messaging


class BackupManager:
    target = messaging.Target(version="1.0")

    def __init__(self, host):
        self.host = host

    def init_host(self):
        pass

    def shutdown(self):
        pass

    def periodic_tasks(self):
        return []
