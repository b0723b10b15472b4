"""Client of the backup service: what the api and the volume service call.

`host` is the backup service's host (the backup row's `host`); every method is a cast: the
caller has already moved the backup (and its volume) to the operation's status and written
its workers row, and the service ends the operation either way (docs/backups-design.md).

Version history:
  1.0  (no methods yet: backups arrive with a later issue)
  1.1  create_backup, restore_backup, delete_backup, import_record (issue 11)
"""

from common import rpc

TOPIC = "lamina-backup"


class BackupAPI:
    VERSION = "1.1"

    def __init__(self):
        self._client = rpc.get_client(TOPIC, self.VERSION, "backup")

    def _prepare(self, host, version="1.1"):
        return self._client.prepare(server=host, version=version)

    def create_backup(self, ctxt, host, backup_id):
        self._prepare(host).cast(ctxt, "create_backup", backup_id=backup_id)

    def restore_backup(self, ctxt, host, backup_id, volume_id):
        self._prepare(host).cast(ctxt, "restore_backup", backup_id=backup_id,
                                 volume_id=volume_id)

    def delete_backup(self, ctxt, host, backup_id):
        self._prepare(host).cast(ctxt, "delete_backup", backup_id=backup_id)

    def import_record(self, ctxt, host, backup_id):
        self._prepare(host).cast(ctxt, "import_record", backup_id=backup_id)
