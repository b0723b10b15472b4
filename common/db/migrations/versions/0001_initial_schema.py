"""initial schema: volumes, metadata, types, services, workers, pools, messages

Revision ID: 0001
Revises: 
Create Date: 2026-11-23 09:17:31.552997
"""
import datetime

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import mysql

revision = '0001'
down_revision = None
branch_labels = None
depends_on = None

# Microseconds on MySQL/MariaDB too, as common/db/models.py PreciseDateTime.
PRECISE_DATETIME = sa.DateTime().with_variant(mysql.DATETIME(fsp=6), "mysql", "mariadb")

DEFAULT_TYPE_ID = "5f5d7a1e-0000-4000-8000-00000000d3fa"


def upgrade():
    op.create_table('messages',
    sa.Column('id', sa.String(length=36), nullable=False),
    sa.Column('project_id', sa.String(length=255), nullable=True),
    sa.Column('request_id', sa.String(length=255), nullable=True),
    sa.Column('resource_type', sa.String(length=40), nullable=True),
    sa.Column('resource_uuid', sa.String(length=36), nullable=True),
    sa.Column('event_id', sa.String(length=60), nullable=False),
    sa.Column('message_level', sa.String(length=20), nullable=False),
    sa.Column('detail', sa.Text(), nullable=False),
    sa.Column('created_at', PRECISE_DATETIME, nullable=False),
    sa.Column('expires_at', sa.DateTime(), nullable=True),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('messages', schema=None) as batch_op:
        batch_op.create_index('ix_messages_project', ['project_id'], unique=False)

    op.create_table('pools',
    sa.Column('name', sa.String(length=255), nullable=False),
    sa.Column('host', sa.String(length=255), nullable=False),
    sa.Column('pool_name', sa.String(length=255), nullable=False),
    sa.Column('volume_backend_name', sa.String(length=255), nullable=True),
    sa.Column('availability_zone', sa.String(length=255), nullable=True),
    sa.Column('total_capacity_gb', sa.Float(), nullable=False),
    sa.Column('free_capacity_gb', sa.Float(), nullable=False),
    sa.Column('allocated_capacity_gb', sa.BigInteger(), nullable=False),
    sa.Column('volume_count', sa.Integer(), nullable=False),
    sa.Column('thin_provisioning', sa.Boolean(), nullable=False),
    sa.Column('max_over_subscription_ratio', sa.Float(), nullable=False),
    sa.Column('reserved_percentage', sa.Integer(), nullable=False),
    sa.Column('capabilities', sa.Text(), nullable=False),
    sa.Column('reported_at', sa.DateTime(), nullable=True),
    sa.Column('usable_capacity_gb', sa.BigInteger(), nullable=False),
    sa.PrimaryKeyConstraint('name')
    )
    with op.batch_alter_table('pools', schema=None) as batch_op:
        batch_op.create_index('ix_pools_host', ['host'], unique=False)

    op.create_table('services',
    sa.Column('id', sa.Integer(), autoincrement=True, nullable=False),
    sa.Column('host', sa.String(length=255), nullable=False),
    sa.Column('binary', sa.String(length=255), nullable=False),
    sa.Column('topic', sa.String(length=255), nullable=False),
    sa.Column('availability_zone', sa.String(length=255), nullable=True),
    sa.Column('disabled', sa.Boolean(), nullable=False),
    sa.Column('disabled_reason', sa.String(length=255), nullable=True),
    sa.Column('report_count', sa.BigInteger(), nullable=False),
    sa.Column('heartbeat_at', sa.DateTime(), nullable=True),
    sa.Column('rpc_version', sa.String(length=32), nullable=True),
    sa.Column('created_at', PRECISE_DATETIME, nullable=False),
    sa.Column('updated_at', PRECISE_DATETIME, nullable=True),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('host', 'binary', name='uq_services_host_binary')
    )
    op.create_table('volume_types',
    sa.Column('id', sa.String(length=36), nullable=False),
    sa.Column('name', sa.String(length=255), nullable=False),
    sa.Column('description', sa.String(length=255), nullable=True),
    sa.Column('is_public', sa.Boolean(), nullable=False),
    sa.Column('deleted', sa.Boolean(), nullable=False),
    sa.Column('deleted_at', sa.DateTime(), nullable=True),
    sa.Column('created_at', PRECISE_DATETIME, nullable=False),
    sa.Column('updated_at', PRECISE_DATETIME, nullable=True),
    sa.PrimaryKeyConstraint('id')
    )
    op.create_table('volumes',
    sa.Column('id', sa.String(length=36), nullable=False),
    sa.Column('project_id', sa.String(length=255), nullable=True),
    sa.Column('user_id', sa.String(length=255), nullable=True),
    sa.Column('name', sa.String(length=255), nullable=True),
    sa.Column('description', sa.String(length=255), nullable=True),
    sa.Column('size', sa.Integer(), nullable=False),
    sa.Column('status', sa.String(length=32), nullable=False),
    sa.Column('attach_status', sa.String(length=32), nullable=False),
    sa.Column('migration_status', sa.String(length=32), nullable=True),
    sa.Column('availability_zone', sa.String(length=255), nullable=True),
    sa.Column('host', sa.String(length=255), nullable=True),
    sa.Column('volume_type_id', sa.String(length=36), nullable=True),
    sa.Column('bootable', sa.Boolean(), nullable=False),
    sa.Column('multiattach', sa.Boolean(), nullable=False),
    sa.Column('provider_location', sa.String(length=255), nullable=True),
    sa.Column('launched_at', sa.DateTime(), nullable=True),
    sa.Column('terminated_at', sa.DateTime(), nullable=True),
    sa.Column('deleted', sa.Boolean(), nullable=False),
    sa.Column('deleted_at', sa.DateTime(), nullable=True),
    sa.Column('created_at', PRECISE_DATETIME, nullable=False),
    sa.Column('updated_at', PRECISE_DATETIME, nullable=True),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('volumes', schema=None) as batch_op:
        batch_op.create_index('ix_volumes_deleted_created', ['deleted', 'created_at'], unique=False)
        batch_op.create_index('ix_volumes_host', ['host'], unique=False)
        batch_op.create_index('ix_volumes_project_deleted_created', ['project_id', 'deleted', 'created_at'], unique=False)

    op.create_table('workers',
    sa.Column('id', sa.Integer(), autoincrement=True, nullable=False),
    sa.Column('resource_type', sa.String(length=40), nullable=False),
    sa.Column('resource_id', sa.String(length=36), nullable=False),
    sa.Column('operation', sa.String(length=40), nullable=False),
    sa.Column('host', sa.String(length=255), nullable=True),
    sa.Column('created_at', PRECISE_DATETIME, nullable=False),
    sa.Column('updated_at', PRECISE_DATETIME, nullable=True),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('resource_type', 'resource_id', name='uq_workers_resource')
    )
    with op.batch_alter_table('workers', schema=None) as batch_op:
        batch_op.create_index('ix_workers_host', ['host'], unique=False)

    op.create_table('volume_metadata',
    sa.Column('id', sa.Integer(), autoincrement=True, nullable=False),
    sa.Column('volume_id', sa.String(length=36), nullable=False),
    sa.Column('key', sa.String(length=255), nullable=False),
    sa.Column('value', sa.String(length=255), nullable=False),
    sa.ForeignKeyConstraint(['volume_id'], ['volumes.id'], ),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('volume_id', 'key', name='uq_volume_metadata_key')
    )
    op.create_table('volume_type_extra_specs',
    sa.Column('id', sa.Integer(), autoincrement=True, nullable=False),
    sa.Column('volume_type_id', sa.String(length=36), nullable=False),
    sa.Column('key', sa.String(length=255), nullable=False),
    sa.Column('value', sa.String(length=255), nullable=False),
    sa.ForeignKeyConstraint(['volume_type_id'], ['volume_types.id'], ),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('volume_type_id', 'key', name='uq_type_extra_spec_key')
    )
    # Cinder's default type: volumes created without a type get it.
    types = sa.table("volume_types", sa.column("id", sa.String), sa.column("name", sa.String),
                     sa.column("description", sa.String), sa.column("is_public", sa.Boolean),
                     sa.column("deleted", sa.Boolean), sa.column("created_at", sa.DateTime))
    op.bulk_insert(types, [{"id": DEFAULT_TYPE_ID, "name": "__DEFAULT__",
                            "description": "Default Volume Type", "is_public": True,
                            "deleted": False, "created_at": datetime.datetime(2026, 1, 1)}])


def downgrade():
    op.drop_table('volume_type_extra_specs')
    op.drop_table('volume_metadata')
    with op.batch_alter_table('workers', schema=None) as batch_op:
        batch_op.drop_index('ix_workers_host')

    op.drop_table('workers')
    with op.batch_alter_table('volumes', schema=None) as batch_op:
        batch_op.drop_index('ix_volumes_project_deleted_created')
        batch_op.drop_index('ix_volumes_host')
        batch_op.drop_index('ix_volumes_deleted_created')

    op.drop_table('volumes')
    op.drop_table('volume_types')
    op.drop_table('services')
    with op.batch_alter_table('pools', schema=None) as batch_op:
        batch_op.drop_index('ix_pools_host')

    op.drop_table('pools')
    with op.batch_alter_table('messages', schema=None) as batch_op:
        batch_op.drop_index('ix_messages_project')

    op.drop_table('messages')
