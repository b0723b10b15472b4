"""Client of the scheduler: what the api and the volume services call.

Version history:
  1.0  create_volume, update_pool_capabilities (fanout)
  1.1  extend_volume
  1.2  retype, migrate_volume_to_host
  1.3  service_changed (fanout: a volume service was disabled, enabled, frozen or thawed)
"""

from common import rpc

TOPIC = "lamina-scheduler"


class SchedulerAPI:
    VERSION = "1.3"

    def __init__(self):
        self._client = rpc.get_client(TOPIC, self.VERSION, "scheduler")

    def create_volume(self, ctxt, volume_id):
        self._client.prepare(version="1.0").cast(ctxt, "create_volume", volume_id=volume_id)

    def update_pool_capabilities(self, ctxt, host, pools):
        """Tell every scheduler copy about a back end's pools (they are in the DB too)."""
        self._client.prepare(fanout=True, version="1.0").cast(
            ctxt, "update_pool_capabilities", host=host, pools=pools)

    def service_changed(self, ctxt, host):
        """Tell every scheduler copy that the volume service `host` was disabled, enabled,
        frozen or thawed (the row is changed already), so the next placement knows it."""
        self._client.prepare(fanout=True, version="1.3").cast(ctxt, "service_changed",
                                                              host=host)

    def extend_volume(self, ctxt, volume_id, new_size):
        self._client.prepare(version="1.1").cast(ctxt, "extend_volume", volume_id=volume_id,
                                                 new_size=new_size)

    def retype(self, ctxt, volume_id, new_type_id, migration_policy):
        self._client.prepare(version="1.2").cast(ctxt, "retype", volume_id=volume_id,
                                                 new_type_id=new_type_id,
                                                 migration_policy=migration_policy)

    def migrate_volume_to_host(self, ctxt, volume_id, dest_pool):
        self._client.prepare(version="1.2").cast(ctxt, "migrate_volume_to_host",
                                                 volume_id=volume_id, dest_pool=dest_pool)
