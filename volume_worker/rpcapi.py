"""Client of the volume service: what the api and the scheduler call.

Version history:
  1.0  create_volume, delete_volume
  1.1  extend_volume
  1.2  snapshots, volumes from snapshots and volumes, revert, manage/unmanage, retype,
       migrate (issue 4; every method added in 1.2 passes version="1.2" to _prepare)
  1.3  export_attachment, remove_attachment_export (attachments, issue 10)
  1.4  prepare_backup_source, release_backup_source, prepare_restore_target (backups,
       issue 11; docs/backups-design.md)
  1.5  copy_volume_to_image (os-volume_upload_image, issue 12)
  1.6  reimage_volume (os-reimage, 3.68, issue 12)
  1.7  refresh_pools, clean_up_operations (operators: lamina-manage pool refresh and volume
       cleanup, POST /workers/cleanup; issue 13)
"""

from common import rpc

TOPIC = "lamina-volume"


class VolumeAPI:
    VERSION = "1.7"

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

    def create_snapshot(self, ctxt, host, snapshot_id):
        self._prepare(host, version="1.2").cast(ctxt, "create_snapshot", snapshot_id=snapshot_id)

    def delete_snapshot(self, ctxt, host, snapshot_id):
        self._prepare(host, version="1.2").cast(ctxt, "delete_snapshot", snapshot_id=snapshot_id)

    # --- generic volume groups (1.2, additive: issue 9); host is the group's host@backend ---

    def create_group(self, ctxt, host, group_id):
        self._prepare(host, version="1.2").cast(ctxt, "create_group", group_id=group_id)

    def delete_group(self, ctxt, host, group_id):
        self._prepare(host, version="1.2").cast(ctxt, "delete_group", group_id=group_id)

    def create_group_snapshot(self, ctxt, host, group_snapshot_id):
        self._prepare(host, version="1.2").cast(ctxt, "create_group_snapshot",
                                                group_snapshot_id=group_snapshot_id)

    def delete_group_snapshot(self, ctxt, host, group_snapshot_id):
        self._prepare(host, version="1.2").cast(ctxt, "delete_group_snapshot",
                                                group_snapshot_id=group_snapshot_id)

    def create_group_from_src(self, ctxt, host, group_id):
        self._prepare(host, version="1.2").cast(ctxt, "create_group_from_src",
                                                group_id=group_id)

    def reimage_volume(self, ctxt, host, volume_id, image_id):
        self._prepare(host, version="1.6").cast(ctxt, "reimage_volume", volume_id=volume_id,
                                                image_id=image_id)

    def revert_to_snapshot(self, ctxt, host, volume_id, snapshot_id):
        self._prepare(host, version="1.2").cast(ctxt, "revert_to_snapshot", volume_id=volume_id,
                                                snapshot_id=snapshot_id)

    # --- manage existing / unmanage (1.2) ------------------------------------------------------

    def manage_existing(self, ctxt, host, volume_id, pool, ref):
        self._prepare(host, version="1.2").cast(ctxt, "manage_existing", volume_id=volume_id,
                                                pool=pool, ref=ref)

    def unmanage_volume(self, ctxt, host, volume_id):
        self._prepare(host, version="1.2").cast(ctxt, "unmanage_volume", volume_id=volume_id)

    def get_manageable_volumes(self, ctxt, host):
        """Synchronous: the back end's storage with whether each item is safe to manage."""
        return self._prepare(host, version="1.2").call(ctxt, "get_manageable_volumes")

    # --- manage existing snapshot / unmanage snapshot (1.2, additive: issue 9) ------------------

    def manage_existing_snapshot(self, ctxt, host, snapshot_id, ref):
        self._prepare(host, version="1.2").cast(ctxt, "manage_existing_snapshot",
                                                snapshot_id=snapshot_id, ref=ref)

    def unmanage_snapshot(self, ctxt, host, snapshot_id):
        self._prepare(host, version="1.2").cast(ctxt, "unmanage_snapshot",
                                                snapshot_id=snapshot_id)

    def get_manageable_snapshots(self, ctxt, host):
        """Synchronous: the back end's snapshots with whether each is safe to manage."""
        return self._prepare(host, version="1.2").call(ctxt, "get_manageable_snapshots")

    def migrate_volume(self, ctxt, host, volume_id, dest_pool, new_type_id):
        """To the source's service: copy the volume to dest_pool (claimed) and switch."""
        self._prepare(host, version="1.2").cast(ctxt, "migrate_volume", volume_id=volume_id,
                                                dest_pool=dest_pool, new_type_id=new_type_id)

    def create_migration_target(self, ctxt, host, volume_id, dest_pool):
        """To the destination's service, synchronous: make the storage a migration copies
        into; returns how to open it (see volume_worker/copy.py)."""
        return self._prepare(host, version="1.2").call(
            ctxt, "create_migration_target", volume_id=volume_id, dest_pool=dest_pool)

    def delete_migration_target(self, ctxt, host, volume_id, dest_pool):
        """To the destination's service, synchronous: remove a failed migration's copy."""
        return self._prepare(host, version="1.2").call(
            ctxt, "delete_migration_target", volume_id=volume_id, dest_pool=dest_pool)

    # --- attachments (1.3) -------------------------------------------------------------------

    def export_attachment(self, ctxt, host, attachment_id, connector):
        """Synchronous: export the volume to the connector for the attachment; returns the
        connection_info (volume_worker/flows/attach_volume.py)."""
        return self._prepare(host, version="1.3").call(
            ctxt, "export_attachment", attachment_id=attachment_id, connector=connector)

    def remove_attachment_export(self, ctxt, host, volume_id, attachment_id, connector):
        """Synchronous: remove the attachment's export (volume_worker/flows/detach_volume.py)."""
        return self._prepare(host, version="1.3").call(
            ctxt, "remove_attachment_export", volume_id=volume_id,
            attachment_id=attachment_id, connector=connector)

    # --- backups (1.4): what the backup service asks of a volume's service ------------------

    def prepare_backup_source(self, ctxt, host, volume_id, backup_id, snapshot_id=None):
        """Synchronous: {"connection": {...}, "source_snapshot": name or None}, a readable
        connection (common/connector.open_connection) on a point in time of the volume: the
        snapshot's when snapshot_id is given; else on rbd the new image snapshot
        `backup.<backup_id>` (kept as the next incremental's diff base); else the volume
        itself when it is not in use, a temporary snapshot when it is. source_snapshot names
        the rbd snapshot read (a later incremental's diff base), None elsewhere."""
        return self._prepare(host, version="1.4").call(
            ctxt, "prepare_backup_source", volume_id=volume_id, backup_id=backup_id,
            snapshot_id=snapshot_id)

    def release_backup_source(self, ctxt, host, volume_id, backup_id, keep_source_snapshot):
        """Synchronous: the backup is done with its source. Removes the temporary snapshot;
        on rbd keeps `backup.<backup_id>` when keep_source_snapshot (and removes the
        `backup.*` snapshots of the volume that no live backup names any more)."""
        return self._prepare(host, version="1.4").call(
            ctxt, "release_backup_source", volume_id=volume_id, backup_id=backup_id,
            keep_source_snapshot=keep_source_snapshot)

    def prepare_restore_target(self, ctxt, host, volume_id):
        """Synchronous: a writable connection (common/connector.open_connection) to the
        volume's storage, for a restore."""
        return self._prepare(host, version="1.4").call(ctxt, "prepare_restore_target",
                                                       volume_id=volume_id)

    # --- images (1.5) --------------------------------------------------------------------------

    def copy_volume_to_image(self, ctxt, host, volume_id, image_id):
        """The volume (`uploading`, its workers row claimed for host) into the queued image,
        with the user's token of ctxt (volume_worker/flows/upload_image.py)."""
        self._prepare(host, version="1.5").cast(ctxt, "copy_volume_to_image",
                                                volume_id=volume_id, image_id=image_id)

    # --- operators (1.7) -----------------------------------------------------------------------

    def refresh_pools(self, ctxt, host, timeout=None):
        """Synchronous: the service at host reports its pools now (to the database and the
        schedulers); returns them as it reported them."""
        return self._client.prepare(server=host.split("#")[0], version="1.7",
                                    timeout=timeout).call(ctxt, "refresh_pools")

    def clean_up_operations(self, ctxt, host, of_host, wait=True, timeout=None):
        """The service at host ends the operations the workers table gives of_host (its own,
        or a dead peer's it takes over), as at a service's start-up. With wait, returns the
        operations ended; else a cast (the workers cleanup API answers at once)."""
        cctxt = self._client.prepare(server=host.split("#")[0], version="1.7", timeout=timeout)
        if not wait:
            cctxt.cast(ctxt, "clean_up_operations", of_host=of_host)
            return None
        return cctxt.call(ctxt, "clean_up_operations", of_host=of_host)
