"""lamina-backup: the backup service process. Its RPC server listens on (lamina-backup,
[DEFAULT] host); file and lvm volumes are read through local connections, so the backup
service of their storage host backs them up (docs/backups-design.md). The repository is
[backup] backup_chunk_store (backup_worker/chunkstore)."""

import sys

from oslo_config import cfg

from backup_worker import rpcapi as backup_rpcapi
from backup_worker.manager import BackupManager
from common import service

CONF = cfg.CONF


def build_service():
    return service.Service("lamina-backup", backup_rpcapi.TOPIC, CONF.host,
                           BackupManager(CONF.host), backup_rpcapi.BackupAPI.VERSION)


def main(argv=None):
    service.serve(lambda: [build_service()], sys.argv[1:] if argv is None else argv)


if __name__ == "__main__":
    main()
