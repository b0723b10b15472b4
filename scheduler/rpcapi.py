"""Client of the scheduler: what the api and the volume services call.

Version history:
  1.0  create_volume, update_pool_capabilities (fanout)
  1.1  extend_volume
  1.2  retype, migrate_volume_to_host
  1.3  service_changed (fanout: a volume service was disabled, enabled, frozen or thawed)
  1.4  explain (a call: why a volume went where it went, or a dry run of a request)
"""

from common import rpc

TOPIC = "lamina-scheduler"


class SchedulerAPI:
    VERSION = "1.4"

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

    def explain(self, ctxt, volume_id=None, size=None, volume_type=None):
        """Ask one scheduler copy (a topic call) why the volume `volume_id` went where it went
        (its decision, if in that copy's history), or where a request would go now (a dry run:
        filters and weighers, no claim) for the volume's request or, without a volume, for
        `size` GiB of `volume_type` (name or id). Returns a JSON-able dict:
        {"request": {...}, "pools": [{"pool": name, "passed": bool, "rejected_by": filter or
        None, "reason": str, "weight": float or None}], "chosen": pool or None,
        "recorded": bool}. Another copy's decisions are not in this copy's history: with
        several copies, a recorded decision may come back as a dry run instead."""
        return self._client.prepare(version="1.4").call(ctxt, "explain", volume_id=volume_id,
                                                        size=size, volume_type=volume_type)
