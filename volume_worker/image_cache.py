"""The image-volume cache of one back end (Cinder's image_volume_cache_*): per pool, storage
that holds an image's data as a volume made from it had it, so that the next volume from the
same image in that pool is a clone of it (the driver's create_cloned_volume) rather than a
new download.

An entry (image_volume_cache_entries) is made after a volume's image data is written: its row
first (`creating`; the unique (host, image_id) lets one of two concurrent fills win), then
its storage, cloned from that volume, then `available`. Only `available` entries are cloned
from. An entry whose image changed since (its updated_at differs) is a miss and is removed.
Past image_volume_cache_max_count entries or image_volume_cache_max_size_gb GiB in a pool,
the least recently used go. Removing an entry removes its storage first, then its row: a
clone that starts from a row whose storage is gone fails, and the create falls back to the
download. The cache never fails a create: its errors are logged.

The entries' storage is named by the entry id as a volume's would be (volume-<entry id>);
the back end's capacity reports count it, the scheduler's claims do not."""

import logging
import types

import sqlalchemy
from oslo_config import cfg
from sqlalchemy import delete, select

from common.db import api as db
from common.db import models
from common.db.models import utcnow
from common.db.session import reader, writer

LOG = logging.getLogger(__name__)

cache_opts = [
    cfg.BoolOpt("image_volume_cache_enabled", default=False,
                help="Keep a copy of each image a volume of this back end is made from, in "
                     "the volume's pool, and make later volumes from that image clones of it."),
    cfg.IntOpt("image_volume_cache_max_size_gb", default=0, min=0,
               help="The most GiB of cached images per pool (0: no limit); the least "
                    "recently used go first."),
    cfg.IntOpt("image_volume_cache_max_count", default=0, min=0,
               help="The most cached images per pool (0: no limit); the least recently "
                    "used go first."),
]

CREATING, AVAILABLE = "creating", "available"


def register_opts(conf, backend):
    conf.register_opts(cache_opts, group=backend)
    return conf[backend]


def _storage(entry):
    """The volume-like object the driver makes and removes the entry's storage as."""
    return types.SimpleNamespace(id=entry.id, host=entry.host, size=entry.size, name_id=None)


def _pool_host(volume):
    return volume.host  # host@backend#pool: entries are per pool


class ImageVolumeCache:
    def __init__(self, driver, host, conf=cfg.CONF):
        self.driver = driver
        self.host = host  # host@backend of the volume service this cache belongs to
        self.section = register_opts(conf, driver.backend_name)

    @property
    def enabled(self):
        return self.section.image_volume_cache_enabled

    def entries(self, host=None):
        with reader() as s:
            stmt = select(models.ImageVolumeCacheEntry)
            if host is not None:
                stmt = stmt.where(models.ImageVolumeCacheEntry.host == host)
            return list(s.scalars(stmt.order_by(models.ImageVolumeCacheEntry.last_used)))

    def _entry(self, host, image_id):
        with reader() as s:
            return s.scalars(select(models.ImageVolumeCacheEntry).where(
                models.ImageVolumeCacheEntry.host == host,
                models.ImageVolumeCacheEntry.image_id == image_id)).first()

    def clone(self, volume, image):
        """Make the volume's storage as a clone of the cached image: its model update, or
        None on a miss (nothing made)."""
        if not self.enabled:
            return None
        entry = self._entry(_pool_host(volume), image["id"])
        if entry is None or entry.status != AVAILABLE:
            return None
        if entry.image_updated_at != image.get("updated_at") or entry.size > volume.size:
            if entry.image_updated_at != image.get("updated_at"):
                LOG.info("Image %s changed since it was cached in %s: removing entry %s",
                         image["id"], entry.host, entry.id)
                self.remove(entry)
            return None
        try:
            update = self.driver.create_cloned_volume(volume, _storage(entry)) or {}
        except Exception:
            LOG.exception("Could not clone volume %s from cached image %s (entry %s): "
                          "downloading it instead", volume.id, image["id"], entry.id)
            return None
        if volume.size > entry.size:
            try:
                self.driver.extend_volume(volume, volume.size)
            except Exception:
                LOG.exception("Could not grow volume %s cloned from cache entry %s: "
                              "downloading image %s instead", volume.id, entry.id, image["id"])
                self.driver.delete_volume(volume)
                return None
        with writer() as s:
            db.conditional_update(models.ImageVolumeCacheEntry, entry.id,
                                  {"last_used": utcnow()}, {}, session=s)
        LOG.info("Volume %s made from image %s cached in %s (entry %s)", volume.id,
                 image["id"], entry.host, entry.id)
        return update

    def fill(self, volume, image):
        """After the volume's image data is written: keep a copy of it as the pool's entry
        for the image, unless there is one; then trim the pool to its limits."""
        if not self.enabled:
            return
        values = {"id": db.new_id(), "host": _pool_host(volume), "image_id": image["id"],
                  "image_updated_at": image.get("updated_at"), "status": CREATING,
                  "size": volume.size, "last_used": utcnow()}
        try:
            with writer() as s:
                s.add(models.ImageVolumeCacheEntry(**values))
        except sqlalchemy.exc.IntegrityError:
            return  # the pool has one (or another create is making it)
        entry = types.SimpleNamespace(**values)
        try:
            self.driver.create_cloned_volume(_storage(entry), volume)
        except Exception:
            LOG.exception("Could not cache image %s in %s", image["id"], entry.host)
            self._forget(entry.id)
            return
        with writer() as s:
            db.conditional_update(models.ImageVolumeCacheEntry, entry.id,
                                  {"status": AVAILABLE}, {}, session=s)
        LOG.info("Cached image %s in %s from volume %s (entry %s, %d GiB)", image["id"],
                 entry.host, volume.id, entry.id, entry.size)
        self.trim(entry.host, keep=entry.id)

    def trim(self, host, keep=None):
        """Remove the least recently used entries of the pool past its limits."""
        max_count = self.section.image_volume_cache_max_count
        max_size = self.section.image_volume_cache_max_size_gb
        entries = [e for e in self.entries(host) if e.status == AVAILABLE]
        while entries and ((max_count and len(entries) > max_count)
                           or (max_size and sum(e.size for e in entries) > max_size)):
            victim = next((e for e in entries if e.id != keep), None)
            if victim is None:
                break
            entries.remove(victim)
            LOG.info("Image volume cache of %s over its limits: removing entry %s (image %s)",
                     host, victim.id, victim.image_id)
            self.remove(victim)

    def remove(self, entry):
        try:
            self.driver.delete_volume(_storage(entry))
        except Exception:
            LOG.exception("Could not remove the storage of cache entry %s; keeping it",
                          entry.id)
            return False
        self._forget(entry.id)
        return True

    @staticmethod
    def _forget(entry_id):
        with writer() as s:
            s.execute(delete(models.ImageVolumeCacheEntry).where(
                models.ImageVolumeCacheEntry.id == entry_id))

    def clean_up_interrupted(self):
        """At start: entries left `creating` by a crash of this back end's service."""
        for entry in self.entries():
            if entry.status == CREATING and entry.host.split("#")[0] == self.host:
                LOG.warning("Removing cache entry %s (image %s) left unfinished", entry.id,
                            entry.image_id)
                self.remove(entry)
