"""Client of the volume service: what the api and the scheduler call.

Version history:
  1.0  create_volume, delete_volume
  1.1  extend_volume
  1.2  snapshots, volumes from snapshots and volumes, revert, manage/unmanage, retype,
       migrate (issue 4; every method added in 1.2 passes version="1.2" to _prepare)
"""

from common import rpc

TOPIC = "lamina-volume"


class VolumeAPI:
    VERSION = "1.2"

    def __init__(self):
        self._client = rpc.get_client(TOPIC, self.VERSION, "volume")

    def _prepare(self, host, version="1.0"):
        # A volume lives on host@backend#pool; its service listens on host@backend.
        return self._client.prepare(server=host.split("#")[0], version=version)

    def create_volume(self, ctxt, host, volume_id):
        self._prepare(host).cast(ctxt, "create_volume", volume_id=volume_id)

    def delete_volume(self, ctxt, host, volume_id):
        self._prepare(host).cast(ctxt, "delete_volume", volume_id=volume_id)

    def extend_volume(self, ctxt, host, volume_id, new_size):
        self._prepare(host, version="1.1").cast(ctxt, "extend_volume", volume_id=volume_id,
                                                new_size=new_size)
