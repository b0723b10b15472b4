"""The request-handling layer for volumes: check input against state, write the database,
cast to the services. It never touches storage; the API answers at once and clients poll."""

import logging
import threading
import time

from oslo_config import cfg

from common import exception, volume_status
from common.db import api as db
from common.db import models
from common.db.session import writer
from scheduler import rpcapi as scheduler_rpcapi
from volume_worker import rpcapi as volume_rpcapi

LOG = logging.getLogger(__name__)

volume_api_opts = [
    cfg.StrOpt("default_volume_type", default="__DEFAULT__",
               help="Volume type given to volumes created without one."),
    cfg.StrOpt("default_availability_zone",
               help="Availability zone of volumes created without one; defaults to "
                    "storage_availability_zone."),
]
CONF = cfg.CONF
CONF.register_opts(volume_api_opts)

# Statuses from which a volume may be deleted (Cinder's API reference).
DELETABLE_STATUSES = ("available", "error", "error_restoring", "error_extending",
                      "error_managing")


class VolumeRequests:
    def __init__(self):
        self.scheduler_rpcapi = scheduler_rpcapi.SchedulerAPI()
        self.volume_rpcapi = volume_rpcapi.VolumeAPI()
        self._zones = (0.0, frozenset())
        self._zones_lock = threading.Lock()

    # --- helpers -----------------------------------------------------------------------------

    def known_zones(self):
        """Zones that some pool reports, plus the default; cached for a few seconds."""
        with self._zones_lock:
            fetched_at, zones = self._zones
            if time.monotonic() - fetched_at > 10:
                zones = frozenset({p.availability_zone for p in db.pool_get_all()
                                   if p.availability_zone} | {self.default_zone()})
                self._zones = (time.monotonic(), zones)
            return zones

    @staticmethod
    def default_zone():
        return CONF.default_availability_zone or CONF.storage_availability_zone

    @staticmethod
    def resolve_type(ident):
        if ident:
            return db.volume_type_get_by_name_or_id(ident)
        try:
            return db.volume_type_get_by_name(CONF.default_volume_type)
        except exception.VolumeTypeNotFound:
            raise exception.InvalidVolumeType(
                reason="the default volume type %s does not exist" % CONF.default_volume_type)

    # --- operations --------------------------------------------------------------------------

    def create(self, ctx, size, name=None, description=None, volume_type=None,
               availability_zone=None, metadata=None):
        vtype = self.resolve_type(volume_type)
        zone = availability_zone or self.default_zone()
        if zone not in self.known_zones():
            raise exception.InvalidInput(reason="Availability zone '%s' is invalid." % zone)
        volume = db.volume_create({
            "project_id": ctx.project_id, "user_id": ctx.user_id, "name": name,
            "description": description, "size": size, "status": "creating",
            "attach_status": "detached", "availability_zone": zone,
            "volume_type_id": vtype.id,
        }, metadata=metadata)
        LOG.info("Volume %s (%d GiB, type %s) accepted", volume.id, size, vtype.name)
        try:
            self.scheduler_rpcapi.create_volume(ctx, volume.id)
        except Exception as exc:
            self._fail_unsent(ctx, volume, exc)
            raise exception.ServiceBusy(service="scheduler")
        return volume

    @staticmethod
    def _fail_unsent(ctx, volume, exc):
        volume_status.fail_operation(ctx, volume.id, "creating", "error",
                                     volume_status.EVENT_SCHEDULE, "schedule allocate volume",
                                     "the scheduler could not be reached (%s)" % exc,
                                     expected={"host": None})

    def delete(self, ctx, volume_id):
        volume = db.volume_get(ctx, volume_id)
        expected = {"status": DELETABLE_STATUSES, "attach_status": "detached",
                    "migration_status": None, "deleted": False, "host": volume.host}
        with writer() as s:
            won = db.conditional_update(models.Volume, volume_id, {"status": "deleting"},
                                        expected, session=s)
            if won:
                db.worker_release("volume", volume_id, session=s)
                if volume.host:
                    db.worker_claim("volume", volume_id, "delete",
                                    host=volume.host.split("#")[0], session=s)
                else:
                    # Never placed: no storage and no claim exist, so the row just goes.
                    db.volume_mark_deleted(volume_id, session=s)
        if not won:
            raise exception.InvalidVolume(
                reason="Volume status must be available or error or error_restoring or "
                       "error_extending or error_managing and must not be migrating, "
                       "attached, belong to a group, have snapshots or be disassociated from "
                       "snapshots after volume transfer.")
        if volume.host:
            self.volume_rpcapi.delete_volume(ctx, volume.host, volume_id)
        LOG.info("Volume %s delete accepted", volume_id)

    def update(self, ctx, volume_id, values, metadata=None):
        db.volume_get(ctx, volume_id)
        return db.volume_update(volume_id, values, metadata=metadata)

    def extend(self, ctx, volume_id, new_size):
        volume = db.volume_get(ctx, volume_id)
        if volume.status != "available":
            raise exception.InvalidVolume(
                reason="Volume status must be 'available' to extend, currently %s."
                       % volume.status)
        if new_size <= volume.size:
            raise exception.InvalidInput(
                reason="New size for extend must be greater than current size. (current: "
                       "%d, extended: %d)." % (volume.size, new_size))
        with writer() as s:
            won = db.conditional_update(models.Volume, volume_id, {"status": "extending"},
                                        {"status": "available", "size": volume.size,
                                         "deleted": False}, session=s)
            if won:
                db.worker_release("volume", volume_id, session=s)
                db.worker_claim("volume", volume_id, "extend",
                                host=volume.host.split("#")[0], session=s)
        if not won:
            raise exception.InvalidVolume(reason="Volume status must be 'available' to "
                                                 "extend; another request changed it.")
        self.scheduler_rpcapi.extend_volume(ctx, volume_id, new_size)
        LOG.info("Volume %s extend to %d GiB accepted", volume_id, new_size)
