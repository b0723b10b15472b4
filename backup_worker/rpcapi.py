"""Client of the backup service.

Version history:
  1.0  (no methods yet: backups arrive with a later issue)
"""

from common import rpc

TOPIC = "lamina-backup"


class BackupAPI:
    VERSION = "1.0"

    def __init__(self):
        self._client = rpc.get_client(TOPIC, self.VERSION, "backup")
