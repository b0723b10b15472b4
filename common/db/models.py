"""SQLAlchemy 2 models. The schema itself is owned by the Alembic migrations beside this file;
tests check that the two agree."""

import datetime

from sqlalchemy import (
    BigInteger,
    Boolean,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.dialects import mysql
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship


def utcnow():
    return datetime.datetime.now(datetime.timezone.utc).replace(tzinfo=None)


class Base(DeclarativeBase):
    pass


# Microseconds on MySQL/MariaDB too (DATETIME keeps whole seconds there): "newest first"
# (snapshot chains, revert to the latest snapshot, list order) must not tie within a second.
PreciseDateTime = DateTime().with_variant(mysql.DATETIME(fsp=6), "mysql", "mariadb")


class TimestampMixin:
    created_at: Mapped[datetime.datetime] = mapped_column(PreciseDateTime, default=utcnow)
    updated_at: Mapped[datetime.datetime | None] = mapped_column(PreciseDateTime,
                                                                 onupdate=utcnow)


class Volume(TimestampMixin, Base):
    __tablename__ = "volumes"
    __table_args__ = (
        Index("ix_volumes_project_deleted_created", "project_id", "deleted", "created_at"),
        Index("ix_volumes_deleted_created", "deleted", "created_at"),
        Index("ix_volumes_host", "host"),
    )

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    project_id: Mapped[str | None] = mapped_column(String(255))
    user_id: Mapped[str | None] = mapped_column(String(255))
    name: Mapped[str | None] = mapped_column(String(255))
    description: Mapped[str | None] = mapped_column(String(255))
    size: Mapped[int] = mapped_column(Integer)
    status: Mapped[str] = mapped_column(String(32))
    attach_status: Mapped[str] = mapped_column(String(32), default="detached")
    migration_status: Mapped[str | None] = mapped_column(String(32))
    availability_zone: Mapped[str | None] = mapped_column(String(255))
    host: Mapped[str | None] = mapped_column(String(255))
    volume_type_id: Mapped[str | None] = mapped_column(String(36))
    bootable: Mapped[bool] = mapped_column(Boolean, default=False)
    multiattach: Mapped[bool] = mapped_column(Boolean, default=False)
    provider_location: Mapped[str | None] = mapped_column(String(255))
    launched_at: Mapped[datetime.datetime | None] = mapped_column(DateTime)
    terminated_at: Mapped[datetime.datetime | None] = mapped_column(DateTime)
    deleted: Mapped[bool] = mapped_column(Boolean, default=False)
    deleted_at: Mapped[datetime.datetime | None] = mapped_column(DateTime)
    # Where the data came from (Cinder's snapshot_id / source_volid).
    snapshot_id: Mapped[str | None] = mapped_column(String(36))
    source_volid: Mapped[str | None] = mapped_column(String(36))
    # The status an admin action or a migration returns the volume to.
    previous_status: Mapped[str | None] = mapped_column(String(32))
    # The id the storage is named after when it is not the volume's own (after a migration
    # the volume keeps its id while its data lives in the copy's storage).
    name_id: Mapped[str | None] = mapped_column(String(36))
    # The generic volume group the volume belongs to (3.13).
    group_id: Mapped[str | None] = mapped_column(String(36))
    # The backup the volume is being created from (3.47, or a restore to a new volume):
    # while the volume is `creating` or `restoring-backup` that backup cannot be deleted.
    backup_id: Mapped[str | None] = mapped_column(String(36))
    # The image the volume is made from (imageRef): the volume service writes its data.
    image_id: Mapped[str | None] = mapped_column(String(36))

    volume_metadata: Mapped[list["VolumeMetadata"]] = relationship(
        lazy="selectin", cascade="all, delete-orphan")
    volume_admin_metadata: Mapped[list["VolumeAdminMetadata"]] = relationship(
        lazy="selectin", cascade="all, delete-orphan")
    volume_type: Mapped["VolumeType | None"] = relationship(
        primaryjoin="Volume.volume_type_id == VolumeType.id", foreign_keys=[volume_type_id],
        lazy="joined", viewonly=True)


class VolumeMetadata(Base):
    __tablename__ = "volume_metadata"
    __table_args__ = (UniqueConstraint("volume_id", "key", name="uq_volume_metadata_key"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    volume_id: Mapped[str] = mapped_column(String(36), ForeignKey("volumes.id"))
    key: Mapped[str] = mapped_column(String(255))
    value: Mapped[str] = mapped_column(String(255))


class VolumeAdminMetadata(Base):
    """Keys only admins and the service set (readonly, attached_mode), as Cinder's."""
    __tablename__ = "volume_admin_metadata"
    __table_args__ = (UniqueConstraint("volume_id", "key", name="uq_volume_admin_metadata_key"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    volume_id: Mapped[str] = mapped_column(String(36), ForeignKey("volumes.id"))
    key: Mapped[str] = mapped_column(String(255))
    value: Mapped[str] = mapped_column(String(255))


class VolumeGlanceMetadata(Base):
    """Image metadata of a volume (os-set_image_metadata) or of a snapshot (copied from its
    volume, so volumes made from it inherit it)."""
    __tablename__ = "volume_glance_metadata"
    __table_args__ = (Index("ix_volume_glance_metadata_volume", "volume_id"),
                      Index("ix_volume_glance_metadata_snapshot", "snapshot_id"))

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    volume_id: Mapped[str | None] = mapped_column(String(36))
    snapshot_id: Mapped[str | None] = mapped_column(String(36))
    key: Mapped[str] = mapped_column(String(255))
    value: Mapped[str] = mapped_column(Text)


class Snapshot(TimestampMixin, Base):
    __tablename__ = "snapshots"
    __table_args__ = (
        Index("ix_snapshots_project_deleted_created", "project_id", "deleted", "created_at"),
        Index("ix_snapshots_volume", "volume_id"),
    )

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    project_id: Mapped[str | None] = mapped_column(String(255))
    user_id: Mapped[str | None] = mapped_column(String(255))
    volume_id: Mapped[str] = mapped_column(String(36), ForeignKey("volumes.id"))
    name: Mapped[str | None] = mapped_column(String(255))
    description: Mapped[str | None] = mapped_column(String(255))
    status: Mapped[str] = mapped_column(String(32))
    progress: Mapped[str | None] = mapped_column(String(255))
    volume_size: Mapped[int] = mapped_column(Integer)
    volume_type_id: Mapped[str | None] = mapped_column(String(36))
    provider_location: Mapped[str | None] = mapped_column(String(255))
    deleted: Mapped[bool] = mapped_column(Boolean, default=False)
    deleted_at: Mapped[datetime.datetime | None] = mapped_column(DateTime)
    # The group snapshot this snapshot was taken as part of (3.14).
    group_snapshot_id: Mapped[str | None] = mapped_column(String(36))

    snapshot_metadata: Mapped[list["SnapshotMetadata"]] = relationship(
        lazy="selectin", cascade="all, delete-orphan")


class SnapshotMetadata(Base):
    __tablename__ = "snapshot_metadata"
    __table_args__ = (UniqueConstraint("snapshot_id", "key", name="uq_snapshot_metadata_key"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    snapshot_id: Mapped[str] = mapped_column(String(36), ForeignKey("snapshots.id"))
    key: Mapped[str] = mapped_column(String(255))
    value: Mapped[str] = mapped_column(String(255))


class VolumeType(TimestampMixin, Base):
    __tablename__ = "volume_types"

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    name: Mapped[str] = mapped_column(String(255))
    description: Mapped[str | None] = mapped_column(String(255))
    is_public: Mapped[bool] = mapped_column(Boolean, default=True)
    deleted: Mapped[bool] = mapped_column(Boolean, default=False)
    deleted_at: Mapped[datetime.datetime | None] = mapped_column(DateTime)
    # The QoS specs associated with the type (qos-specs associate); at most one, as Cinder.
    qos_specs_id: Mapped[str | None] = mapped_column(String(36))

    extra_specs: Mapped[list["VolumeTypeExtraSpec"]] = relationship(
        lazy="selectin", cascade="all, delete-orphan")
    encryption: Mapped["VolumeTypeEncryption | None"] = relationship(
        primaryjoin="VolumeType.id == VolumeTypeEncryption.volume_type_id",
        foreign_keys="VolumeTypeEncryption.volume_type_id", lazy="selectin", viewonly=True,
        uselist=False)


class VolumeTypeExtraSpec(Base):
    __tablename__ = "volume_type_extra_specs"
    __table_args__ = (UniqueConstraint("volume_type_id", "key", name="uq_type_extra_spec_key"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    volume_type_id: Mapped[str] = mapped_column(String(36), ForeignKey("volume_types.id"))
    key: Mapped[str] = mapped_column(String(255))
    value: Mapped[str] = mapped_column(String(255))


class Service(TimestampMixin, Base):
    __tablename__ = "services"
    __table_args__ = (UniqueConstraint("host", "binary", name="uq_services_host_binary"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    host: Mapped[str] = mapped_column(String(255))
    binary: Mapped[str] = mapped_column(String(255))
    topic: Mapped[str] = mapped_column(String(255))
    availability_zone: Mapped[str | None] = mapped_column(String(255))
    disabled: Mapped[bool] = mapped_column(Boolean, default=False)
    disabled_reason: Mapped[str | None] = mapped_column(String(255))
    # Set by PUT /os-services/freeze on a volume service: its volumes refuse management
    # operations and the scheduler places nothing on it until thaw.
    frozen: Mapped[bool] = mapped_column(Boolean, default=False)
    report_count: Mapped[int] = mapped_column(BigInteger, default=0)
    heartbeat_at: Mapped[datetime.datetime | None] = mapped_column(DateTime)
    rpc_version: Mapped[str | None] = mapped_column(String(32))


class Worker(TimestampMixin, Base):
    """Who owns an operation in flight, so that a restarted or surviving service can finish or
    revert it instead of leaving the resource in a transitional status for ever."""

    __tablename__ = "workers"
    __table_args__ = (
        UniqueConstraint("resource_type", "resource_id", name="uq_workers_resource"),
        Index("ix_workers_host", "host"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    resource_type: Mapped[str] = mapped_column(String(40))
    resource_id: Mapped[str] = mapped_column(String(36))
    operation: Mapped[str] = mapped_column(String(40))
    # None while the operation waits for the scheduler, then the volume service's host@backend.
    host: Mapped[str | None] = mapped_column(String(255))


class ImageVolumeCacheEntry(TimestampMixin, Base):
    """Storage on one back end pool (host@backend#pool) holding an image's data as a volume
    made from it had it: a later volume from the same image there is cloned from it.
    image_updated_at is the image's updated_at when the entry was made (a changed image is
    a miss, and the entry goes)."""

    __tablename__ = "image_volume_cache_entries"
    __table_args__ = (
        UniqueConstraint("host", "image_id", name="uq_image_volume_cache_host_image"),
    )

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    host: Mapped[str] = mapped_column(String(255))
    image_id: Mapped[str] = mapped_column(String(36))
    image_updated_at: Mapped[str | None] = mapped_column(String(64))
    # `creating` while its storage is being made (no volume is cloned from it yet), then
    # `available`
    status: Mapped[str] = mapped_column(String(16))
    size: Mapped[int] = mapped_column(Integer)
    last_used: Mapped[datetime.datetime] = mapped_column(PreciseDateTime, default=utcnow)


class Pool(Base):
    """A back end pool as its volume service last reported it, plus the capacity the
    schedulers have claimed on it. allocated_capacity_gb is changed only by conditional UPDATEs
    (claim and release), never by the reports, so concurrent schedulers never overfill it."""

    __tablename__ = "pools"
    __table_args__ = (Index("ix_pools_host", "host"),)

    name: Mapped[str] = mapped_column(String(255), primary_key=True)  # host@backend#pool
    host: Mapped[str] = mapped_column(String(255))  # host@backend
    pool_name: Mapped[str] = mapped_column(String(255))
    volume_backend_name: Mapped[str | None] = mapped_column(String(255))
    availability_zone: Mapped[str | None] = mapped_column(String(255))
    total_capacity_gb: Mapped[float] = mapped_column(Float, default=0)
    free_capacity_gb: Mapped[float] = mapped_column(Float, default=0)
    allocated_capacity_gb: Mapped[int] = mapped_column(BigInteger, default=0)
    volume_count: Mapped[int] = mapped_column(Integer, default=0)
    thin_provisioning: Mapped[bool] = mapped_column(Boolean, default=False)
    max_over_subscription_ratio: Mapped[float] = mapped_column(Float, default=1.0)
    reserved_percentage: Mapped[int] = mapped_column(Integer, default=0)
    capabilities: Mapped[str] = mapped_column(Text, default="{}")
    reported_at: Mapped[datetime.datetime | None] = mapped_column(DateTime)
    # Capacity that the current formula lets be claimed; kept beside the inputs so a claim
    # is a single indexed-row UPDATE: allocated + size <= usable_capacity_gb.
    usable_capacity_gb: Mapped[int] = mapped_column(BigInteger, default=0)


class Message(Base):
    """User messages (Cinder's /messages API): why an asynchronous operation failed."""

    __tablename__ = "messages"
    __table_args__ = (Index("ix_messages_project", "project_id"),)

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    project_id: Mapped[str | None] = mapped_column(String(255))
    request_id: Mapped[str | None] = mapped_column(String(255))
    resource_type: Mapped[str | None] = mapped_column(String(40))
    resource_uuid: Mapped[str | None] = mapped_column(String(36))
    event_id: Mapped[str] = mapped_column(String(60))
    message_level: Mapped[str] = mapped_column(String(20), default="ERROR")
    detail: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime.datetime] = mapped_column(PreciseDateTime, default=utcnow)
    expires_at: Mapped[datetime.datetime | None] = mapped_column(DateTime)


# --- quotas (common/quota.py, common/db/quota_api.py) -----------------------------------------

class Quota(TimestampMixin, Base):
    """A project's own limit for one resource (os-quota-sets update); none: its class's."""

    __tablename__ = "quotas"
    __table_args__ = (
        UniqueConstraint("project_id", "resource", name="uq_quotas_project_resource"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    project_id: Mapped[str] = mapped_column(String(255))
    resource: Mapped[str] = mapped_column(String(300))
    hard_limit: Mapped[int] = mapped_column(Integer)


class QuotaClass(TimestampMixin, Base):
    """A quota class's limit for one resource (os-quota-class-sets); class `default` is what
    projects without their own limit get; none: the config option's default."""

    __tablename__ = "quota_classes"
    __table_args__ = (UniqueConstraint("class_name", "resource", name="uq_quota_classes_resource"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    class_name: Mapped[str] = mapped_column(String(255))
    resource: Mapped[str] = mapped_column(String(300))
    hard_limit: Mapped[int] = mapped_column(Integer)


class QuotaUsage(TimestampMixin, Base):
    """What a project uses of one resource. Changed only by conditional UPDATEs
    (in_use + delta <= limit) in the transaction that creates, deletes or resizes the
    resource, so concurrent requests never exceed the limit together."""

    __tablename__ = "quota_usages"
    __table_args__ = (UniqueConstraint("project_id", "resource", name="uq_quota_usages_resource"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    project_id: Mapped[str] = mapped_column(String(255))
    resource: Mapped[str] = mapped_column(String(300))
    in_use: Mapped[int] = mapped_column(BigInteger, default=0)


class QuotaReservation(TimestampMixin, Base):
    """Usage charged for an operation in flight whose resource row does not show it yet (the
    extra gigabytes of an extend); given back when the operation fails."""

    __tablename__ = "quota_reservations"
    __table_args__ = (Index("ix_quota_reservations_resource_id", "resource_id"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    project_id: Mapped[str] = mapped_column(String(255))
    resource_id: Mapped[str] = mapped_column(String(36))
    resource: Mapped[str] = mapped_column(String(300))
    delta: Mapped[int] = mapped_column(BigInteger)


class VolumeTypeProject(TimestampMixin, Base):
    """A project's access to a private volume type (os-volume-type-access)."""

    __tablename__ = "volume_type_projects"
    __table_args__ = (
        UniqueConstraint("volume_type_id", "project_id", name="uq_volume_type_projects"),
        Index("ix_volume_type_projects_project", "project_id"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    volume_type_id: Mapped[str] = mapped_column(String(36), ForeignKey("volume_types.id"))
    project_id: Mapped[str] = mapped_column(String(255))


# --- QoS specs, type encryption, per-project default types (common/db/types_api.py) --------

class QualityOfServiceSpecs(TimestampMixin, Base):
    """A named set of QoS keys (qos-specs) for the consumer that applies them. Removed rows
    are deleted, not soft-deleted, so the name stays unique in the database itself."""

    __tablename__ = "qos_specs"
    __table_args__ = (UniqueConstraint("name", name="uq_qos_specs_name"),)

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    name: Mapped[str] = mapped_column(String(255))
    consumer: Mapped[str] = mapped_column(String(255), default="back-end")

    keys: Mapped[list["QualityOfServiceSpecsKey"]] = relationship(
        lazy="selectin", cascade="all, delete-orphan")


class QualityOfServiceSpecsKey(Base):
    __tablename__ = "qos_specs_keys"
    __table_args__ = (UniqueConstraint("qos_specs_id", "key", name="uq_qos_specs_keys_key"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    qos_specs_id: Mapped[str] = mapped_column(String(36), ForeignKey("qos_specs.id"))
    key: Mapped[str] = mapped_column(String(255))
    value: Mapped[str] = mapped_column(String(255))


class VolumeTypeEncryption(TimestampMixin, Base):
    """A volume type's encryption specs (Cinder's `encryption` table). Metadata only: Lamina
    stores and shows them and marks the type's volumes encrypted; it encrypts no data."""

    __tablename__ = "encryption"
    __table_args__ = (UniqueConstraint("volume_type_id", name="uq_encryption_volume_type"),)

    encryption_id: Mapped[str] = mapped_column(String(36), primary_key=True)
    volume_type_id: Mapped[str] = mapped_column(String(36), ForeignKey("volume_types.id"))
    provider: Mapped[str] = mapped_column(String(255))
    cipher: Mapped[str | None] = mapped_column(String(255))
    key_size: Mapped[int | None] = mapped_column(Integer)
    control_location: Mapped[str] = mapped_column(String(255), default="front-end")


class DefaultVolumeType(TimestampMixin, Base):
    """A project's default volume type (3.62 default-types): volume create without a type
    uses it before the configured default_volume_type."""

    __tablename__ = "default_volume_types"
    __table_args__ = (Index("ix_default_volume_types_type", "volume_type_id"),)

    project_id: Mapped[str] = mapped_column(String(255), primary_key=True)
    volume_type_id: Mapped[str] = mapped_column(String(36), ForeignKey("volume_types.id"))


# --- volume transfers (api/routes/transfers.py, common/db/transfers_api.py) ------------------

class Transfer(TimestampMixin, Base):
    """An offer of a volume (and, unless no_snapshots, its snapshots) to another project.

    Only a salted hash of the auth key is kept; the key itself is shown once, in the create
    response. While the row is live (not deleted) the volume is `awaiting-transfer`. A
    delete or an accept soft-deletes the row (accepted, destination_project_id: 3.57)."""

    __tablename__ = "transfers"
    __table_args__ = (
        Index("ix_transfers_source_deleted", "source_project_id", "deleted"),
        Index("ix_transfers_volume", "volume_id"),
    )

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    volume_id: Mapped[str] = mapped_column(String(36), ForeignKey("volumes.id"))
    name: Mapped[str | None] = mapped_column(String(255))
    salt: Mapped[str] = mapped_column(String(255))
    crypt_hash: Mapped[str] = mapped_column(String(255))
    expires_at: Mapped[datetime.datetime | None] = mapped_column(DateTime)
    no_snapshots: Mapped[bool] = mapped_column(Boolean, default=False)
    source_project_id: Mapped[str | None] = mapped_column(String(255))
    destination_project_id: Mapped[str | None] = mapped_column(String(255))
    accepted: Mapped[bool] = mapped_column(Boolean, default=False)
    deleted: Mapped[bool] = mapped_column(Boolean, default=False)
    deleted_at: Mapped[datetime.datetime | None] = mapped_column(DateTime)


# --- generic volume groups (api/routes/group*.py, common/db/groups_api.py) -------------------

class GroupType(TimestampMixin, Base):
    __tablename__ = "group_types"

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    name: Mapped[str] = mapped_column(String(255))
    description: Mapped[str | None] = mapped_column(String(255))
    is_public: Mapped[bool] = mapped_column(Boolean, default=True)
    deleted: Mapped[bool] = mapped_column(Boolean, default=False)
    deleted_at: Mapped[datetime.datetime | None] = mapped_column(DateTime)

    group_specs: Mapped[list["GroupTypeSpec"]] = relationship(
        lazy="selectin", cascade="all, delete-orphan")


class GroupTypeSpec(Base):
    __tablename__ = "group_type_specs"
    __table_args__ = (UniqueConstraint("group_type_id", "key", name="uq_group_type_specs_key"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    group_type_id: Mapped[str] = mapped_column(String(36), ForeignKey("group_types.id"))
    key: Mapped[str] = mapped_column(String(255))
    value: Mapped[str] = mapped_column(String(255))


class Group(TimestampMixin, Base):
    """A generic volume group: volumes of its volume types on one back end (its host)."""
    __tablename__ = "groups"
    __table_args__ = (Index("ix_groups_project_deleted", "project_id", "deleted"),)

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    project_id: Mapped[str | None] = mapped_column(String(255))
    user_id: Mapped[str | None] = mapped_column(String(255))
    host: Mapped[str | None] = mapped_column(String(255))
    availability_zone: Mapped[str | None] = mapped_column(String(255))
    name: Mapped[str | None] = mapped_column(String(255))
    description: Mapped[str | None] = mapped_column(String(255))
    group_type_id: Mapped[str] = mapped_column(String(36))
    status: Mapped[str] = mapped_column(String(32))
    group_snapshot_id: Mapped[str | None] = mapped_column(String(36))
    source_group_id: Mapped[str | None] = mapped_column(String(36))
    deleted: Mapped[bool] = mapped_column(Boolean, default=False)
    deleted_at: Mapped[datetime.datetime | None] = mapped_column(DateTime)

    volume_types: Mapped[list["GroupVolumeTypeMapping"]] = relationship(
        lazy="selectin", cascade="all, delete-orphan")


class GroupVolumeTypeMapping(Base):
    __tablename__ = "group_volume_type_mapping"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    group_id: Mapped[str] = mapped_column(String(36), ForeignKey("groups.id"))
    volume_type_id: Mapped[str] = mapped_column(String(36))


class GroupSnapshot(TimestampMixin, Base):
    __tablename__ = "group_snapshots"
    __table_args__ = (Index("ix_group_snapshots_project_deleted", "project_id", "deleted"),)

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    group_id: Mapped[str] = mapped_column(String(36))
    project_id: Mapped[str | None] = mapped_column(String(255))
    user_id: Mapped[str | None] = mapped_column(String(255))
    name: Mapped[str | None] = mapped_column(String(255))
    description: Mapped[str | None] = mapped_column(String(255))
    status: Mapped[str] = mapped_column(String(32))
    group_type_id: Mapped[str] = mapped_column(String(36))
    deleted: Mapped[bool] = mapped_column(Boolean, default=False)
    deleted_at: Mapped[datetime.datetime | None] = mapped_column(DateTime)


class VolumeAttachment(TimestampMixin, Base):
    """One attachment of a volume to a compute host (Cinder's volume_attachment), with the
    export the volume service made for it: its connector and connection_info (JSON)."""
    __tablename__ = "volume_attachment"
    __table_args__ = (Index("ix_volume_attachment_volume_deleted", "volume_id", "deleted"),)

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    volume_id: Mapped[str] = mapped_column(String(36), ForeignKey("volumes.id"))
    # The volume's project, so attachments are listed per project without a join.
    project_id: Mapped[str | None] = mapped_column(String(255))
    instance_uuid: Mapped[str | None] = mapped_column(String(36))
    attached_host: Mapped[str | None] = mapped_column(String(255))
    mountpoint: Mapped[str | None] = mapped_column(String(255))
    attach_status: Mapped[str] = mapped_column(String(255))
    attach_mode: Mapped[str | None] = mapped_column(String(36))
    attach_time: Mapped[datetime.datetime | None] = mapped_column(DateTime)
    detach_time: Mapped[datetime.datetime | None] = mapped_column(DateTime)
    connector: Mapped[str | None] = mapped_column(Text)
    connection_info: Mapped[str | None] = mapped_column(Text)
    deleted: Mapped[bool] = mapped_column(Boolean, default=False)
    deleted_at: Mapped[datetime.datetime | None] = mapped_column(DateTime)


class Backup(TimestampMixin, Base):
    """A backup of a volume (Cinder's backups table). Its data lives in the chunk store of
    the backup service on `host` (backup_worker/chunkstore), as a manifest named by the id.
    The states and their transitions: common/db/backups_api.py."""
    __tablename__ = "backups"
    __table_args__ = (
        Index("ix_backups_project_deleted_created", "project_id", "deleted", "created_at"),
        Index("ix_backups_volume", "volume_id"),
        Index("ix_backups_parent", "parent_id"),
    )

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    project_id: Mapped[str | None] = mapped_column(String(255))
    user_id: Mapped[str | None] = mapped_column(String(255))
    # No foreign key: a backup outlives its volume.
    volume_id: Mapped[str] = mapped_column(String(36))
    snapshot_id: Mapped[str | None] = mapped_column(String(36))
    # The backup service (host) whose repository holds the data.
    host: Mapped[str | None] = mapped_column(String(255))
    availability_zone: Mapped[str | None] = mapped_column(String(255))
    name: Mapped[str | None] = mapped_column(String(255))
    description: Mapped[str | None] = mapped_column(String(255))
    container: Mapped[str | None] = mapped_column(String(255))
    status: Mapped[str] = mapped_column(String(32))
    fail_reason: Mapped[str | None] = mapped_column(String(255))
    # The repository kind that holds the data (posix, rados) and how to find it there.
    service: Mapped[str | None] = mapped_column(String(255))
    service_metadata: Mapped[str | None] = mapped_column(String(255))
    size: Mapped[int] = mapped_column(Integer)
    object_count: Mapped[int | None] = mapped_column(Integer)
    parent_id: Mapped[str | None] = mapped_column(String(36))
    # Taken as an incremental (stays so when pruning re-points parent_id past a deleted one).
    is_incremental: Mapped[bool] = mapped_column(Boolean, default=False)
    num_dependent_backups: Mapped[int] = mapped_column(Integer, default=0)
    # The point in time the data is from: the snapshot's creation for a backup of a
    # snapshot, else the backup's start.
    data_timestamp: Mapped[datetime.datetime | None] = mapped_column(PreciseDateTime)
    # The volume a restore is writing (status `restoring`).
    restore_volume_id: Mapped[str | None] = mapped_column(String(36))
    # The back end snapshot a later incremental diffs against (rbd), named in the manifest too.
    source_snapshot: Mapped[str | None] = mapped_column(String(255))
    encryption_key_id: Mapped[str | None] = mapped_column(String(36))
    # Percent done of the running backup or restore.
    progress: Mapped[int | None] = mapped_column(Integer)
    deleted: Mapped[bool] = mapped_column(Boolean, default=False)
    deleted_at: Mapped[datetime.datetime | None] = mapped_column(DateTime)

    backup_metadata: Mapped[list["BackupMetadata"]] = relationship(
        lazy="selectin", cascade="all, delete-orphan")


class BackupMetadata(Base):
    """A backup's metadata (3.43)."""
    __tablename__ = "backup_metadata"
    __table_args__ = (UniqueConstraint("backup_id", "key", name="uq_backup_metadata_key"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    backup_id: Mapped[str] = mapped_column(String(36), ForeignKey("backups.id"))
    key: Mapped[str] = mapped_column(String(255))
    value: Mapped[str] = mapped_column(String(255))
