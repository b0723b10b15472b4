"""The interface every volume driver implements, and the options every back end has.

A back end is one `[<name>]` section listed in `enabled_backends`; its driver gets that
section as ``self.configuration``. Later operations (snapshots, clones, extend, attach) are
methods here too, so the flows never care which driver they run."""

import abc

from oslo_config import cfg

backend_opts = [
    cfg.StrOpt("volume_driver", default="file", choices=["file", "rbd", "lvm"],
               help="Driver of this back end."),
    cfg.StrOpt("volume_backend_name",
               help="Name reported to the scheduler; volume types select back ends with the "
                    "volume_backend_name extra spec. Defaults to the section name."),
    cfg.IntOpt("reserved_percentage", default=0, min=0, max=100,
               help="Percentage of each pool's capacity never given to volumes."),
    cfg.FloatOpt("max_over_subscription_ratio", default=20.0, min=1.0,
                 help="For thin-provisioned pools: how many times the pool's capacity may be "
                      "promised to volumes in all (1.0 = no over-subscription)."),
]


def register_backend_opts(conf, backend, extra_opts=()):
    conf.register_opts(backend_opts + list(extra_opts), group=backend)
    return conf[backend]


def pool_of(volume_host):
    """'host@backend#pool' -> 'pool'."""
    return volume_host.split("#", 1)[1] if volume_host and "#" in volume_host else None


class VolumeDriver(abc.ABC):
    """What the volume flows ask of a back end. Each call either completes or raises."""

    def __init__(self, backend_name, configuration):
        self.backend_name = backend_name
        self.configuration = configuration

    @property
    def volume_backend_name(self):
        return self.configuration.volume_backend_name or self.backend_name

    def do_setup(self):
        """Prepare the back end (directories, connections). Called once at start."""

    @abc.abstractmethod
    def get_pools(self):
        """One dict per pool: pool_name, total_capacity_gb, free_capacity_gb,
        thin_provisioning_support, max_over_subscription_ratio, reserved_percentage,
        volume_backend_name and any further capabilities volume types may ask for."""

    @abc.abstractmethod
    def create_volume(self, volume):
        """Make the volume's storage in its pool. Returns a dict of fields to store on the
        volume row (e.g. provider_location)."""

    @abc.abstractmethod
    def delete_volume(self, volume):
        """Remove the volume's storage; succeeds when it is already gone."""

    @abc.abstractmethod
    def extend_volume(self, volume, new_size):
        """Grow the volume's storage to new_size GiB, keeping its data."""

    # --- snapshots and copies -----------------------------------------------------------------
    # Not abstract: a driver without them refuses clearly, and the flow's revert runs.

    def create_snapshot(self, snapshot, volume):
        """Make a point-in-time copy of the volume's storage. Returns fields to store on the
        snapshot row (provider_location)."""
        raise self._unsupported("snapshots")

    def delete_snapshot(self, snapshot, volume):
        """Remove the snapshot's storage; succeeds when it is already gone. Volumes made from
        it must stay readable (a driver with copy-on-write clones makes them independent)."""
        raise self._unsupported("snapshots")

    def create_volume_from_snapshot(self, volume, snapshot, snapshot_volume):
        """Make the (new) volume's storage with the snapshot's data, at volume.size GiB."""
        raise self._unsupported("volumes from snapshots")

    def create_cloned_volume(self, volume, source_volume):
        """Make the (new) volume's storage with a copy of source_volume's data."""
        raise self._unsupported("cloned volumes")

    def revert_to_snapshot(self, volume, snapshot):
        """Put the snapshot's data back into the volume; the volume keeps its size."""
        raise self._unsupported("reverting to a snapshot")

    def clone_image(self, volume, image_location, image_meta):
        """Make the (new) volume's storage, at volume.size GiB, straight from where the image
        service keeps the image's data (image_location: a URL of the image's direct_url or
        locations, e.g. rbd://fsid/pool/image/snap), without downloading it. image_meta: the
        image's record (common/image_service.show). Returns the model update (a dict, maybe
        empty) when it made the storage, None when it cannot use this location (another
        store, another cluster, a format it cannot clone, no access): the create flow then
        tries the next location, the image-volume cache and the download. A failure part
        way leaves nothing behind. Here: never."""
        return None

    # --- attachments (issue 10) ----------------------------------------------------------------
    # The attach flow (volume_worker/flows/attach_volume.py) calls these; a driver without
    # them refuses clearly and the flow's revert runs.

    def initialize_connection(self, volume, connector, attachment_id):
        """Export the volume to the host `connector` describes (Nova's connector dict:
        initiator, ip, host, multipath, ...) for attachment `attachment_id`, and return the
        connection_info a compute host opens it with: {"driver_volume_type": "iscsi" | "rbd" |
        "local", "data": {...}} as Cinder's drivers write it. One export per attachment (its
        own target, ACL and CHAP credentials); calling it again for the same attachment
        returns the same export. A failure leaves no export behind."""
        raise self._unsupported("attachments")

    def terminate_connection(self, volume, connector, attachment_id):
        """Remove the export made for attachment_id; succeeds when it is already gone."""

    def ensure_export(self, volume, connector, attachment_id, connection_info):
        """At start of the volume service: make sure the export that connection_info
        describes (made earlier by initialize_connection) exists, with the same target name
        and credentials, so compute hosts keep working across a restart of the service or
        of the target daemon."""

    def remove_stale_exports(self, live_attachments):
        """At start, after ensure_export of the live ones: remove the exports this back end
        made for attachments that no longer exist. live_attachments(ids) -> the ids of those
        that still exist. Drivers that export nothing skip it."""

    def _unsupported(self, what):
        from common import exception

        return exception.DriverError(reason="the %s driver does not support %s"
                                     % (type(self).__name__, what))

    def base_capabilities(self):
        return {
            "volume_backend_name": self.volume_backend_name,
            "reserved_percentage": self.configuration.reserved_percentage,
            "max_over_subscription_ratio": self.configuration.max_over_subscription_ratio,
            "storage_protocol": self.storage_protocol,
            "driver_version": self.version,
            "vendor_name": "Lamina",
        }

    storage_protocol = "unknown"
    version = "1.0.0"

    # --- manage existing / unmanage (volume actions of issue 4) -------------------------------
    # Not abstract: a driver without them refuses clearly and the manage flow's revert runs.

    @staticmethod
    def manage_source_name(existing_ref):
        """The `source-name` of a manage reference, or a Cinder-shaped refusal."""
        from common import exception

        name = existing_ref.get("source-name") if isinstance(existing_ref, dict) else None
        if not name or not isinstance(name, str) or "/" in name or name in (".", ".."):
            raise exception.DriverError(
                reason="manage existing: the reference must be {\"source-name\": <name of the "
                       "storage in the pool>}, got %r" % (existing_ref,))
        return name

    def manage_existing_get_size(self, volume, existing_ref):
        """Size in GiB (rounded up) of the storage existing_ref names in volume.host's
        pool."""
        raise self._unsupported_manage()

    def manage_existing(self, volume, existing_ref):
        """Take the storage over as the volume's own (renamed to the volume's name).
        Returns fields to store on the volume row."""
        raise self._unsupported_manage()

    def manage_existing_undo(self, volume, existing_ref):
        """Give storage taken over by manage_existing its old name back (a later step
        failed)."""
        raise self._unsupported_manage()

    def unmanage(self, volume):
        """Let go of the volume's storage; it stays on the back end as it is."""

    def get_manageable_volumes(self, cinder_volume_ids):
        """Every storage item of the back end as Cinder lists it: reference
        ({"source-name": ...}), size (GiB), safe_to_manage, reason_not_safe, cinder_id,
        extra_info. Items named after a volume in cinder_volume_ids are not safe."""
        raise self._unsupported_manage()

    # --- manage existing snapshots / unmanage (issue 9) ---------------------------------------

    def manage_existing_snapshot_get_size(self, snapshot, volume, existing_ref):
        """Size in GiB (rounded up) of the snapshot of `volume` that existing_ref names."""
        raise self._unsupported_manage()

    def manage_existing_snapshot(self, snapshot, volume, existing_ref):
        """Take the snapshot over as the snapshot row's own (renamed to its name). Returns
        fields to store on the snapshot row."""
        raise self._unsupported_manage()

    def manage_existing_snapshot_undo(self, snapshot, volume, existing_ref):
        """Give a snapshot taken over by manage_existing_snapshot its old name back."""
        raise self._unsupported_manage()

    def unmanage_snapshot(self, snapshot, volume):
        """Let go of the snapshot's storage; it stays on the back end as it is."""

    def get_manageable_snapshots(self, cinder_snapshots, volumes):
        """Every snapshot the back end holds as Cinder lists it: reference, size (GiB),
        safe_to_manage, reason_not_safe, cinder_id, extra_info, source_reference (the
        volume's storage). cinder_snapshots: {snapshot id: volume id} of live snapshot rows;
        volumes: {volume id: volume row} of the back end's live volumes."""
        raise self._unsupported_manage()

    @staticmethod
    def manageable_snapshot_entry(name, size_gb, cinder_snapshots, source_name,
                                  extra_info=None):
        owner = name[len("snapshot-"):] if name.startswith("snapshot-") else None
        owned = owner is not None and owner in cinder_snapshots
        return {"reference": {"source-name": name}, "size": size_gb,
                "safe_to_manage": not owned,
                "reason_not_safe": "already managed" if owned else None,
                "cinder_id": owner if owned else None, "extra_info": extra_info,
                "source_reference": {"source-name": source_name}}

    def migration_connection(self, volume):
        """How another process on this host opens the volume's storage to copy it (a
        migration): {"driver_volume_type": "local", "data": {"device_path": ...}} or
        {"driver_volume_type": "rbd", "data": {pool, image, user, conf, keyring, ...}}."""
        raise self._unsupported_manage()

    # --- backups (issue 11; docs/backups-design.md) ---------------------------------------------
    # The volume service's endpoints prepare_backup_source, release_backup_source and
    # prepare_restore_target call these; the backup service opens the connections they return
    # with common/connector.open_connection. A driver without them refuses clearly.

    def backup_source(self, volume, backup_id, snapshot=None, in_use=False):
        """A readable point in time of the volume for backup `backup_id`:
        {"connection": {...}, "source_snapshot": name or None}. With `snapshot`, that
        snapshot's data; else the volume's, through a temporary snapshot when it is in use
        (or, where the back end keeps one, a snapshot named in `source_snapshot` that a later
        incremental diffs against). A failure leaves nothing behind."""
        raise self._unsupported("backups")

    def release_backup_source(self, volume, backup_id, keep_source_snapshot, live_backup_ids):
        """After the backup read its source: remove the temporary snapshot backup_source made
        (none: fine). A kept diff-base snapshot stays when keep_source_snapshot; those of
        backups not in live_backup_ids (ids of the volume's backups that are not deleted nor
        failed) go. Succeeds when there is nothing to remove."""
        raise self._unsupported("backups")

    def restore_target(self, volume):
        """A writable connection to the volume's storage, for a restore."""
        raise self._unsupported("backups")

    def _unsupported_manage(self):
        from common import exception

        return exception.DriverError(reason="the %s driver does not support managing "
                                            "existing storage" % type(self).__name__)

    @staticmethod
    def manageable_entry(name, size_gb, cinder_volume_ids, extra_info=None):
        """One entry of get_manageable_volumes for storage called `name`."""
        owner = name[len("volume-"):] if name.startswith("volume-") else None
        owned = owner is not None and owner in cinder_volume_ids
        return {"reference": {"source-name": name}, "size": size_gb,
                "safe_to_manage": not owned,
                "reason_not_safe": "already managed" if owned else None,
                "cinder_id": owner if owned else None, "extra_info": extra_info}
