"""backups and backup_metadata; volumes.backup_id (volumes created from a backup)

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-02 06:45:00.000000
"""
import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import mysql

revision = '0009'
down_revision = '0008'
branch_labels = None
depends_on = None

# Microseconds on MySQL/MariaDB too, as common/db/models.py PreciseDateTime.
PRECISE_DATETIME = sa.DateTime().with_variant(mysql.DATETIME(fsp=6), "mysql", "mariadb")


def upgrade():
    op.create_table('backups',
    sa.Column('id', sa.String(length=36), nullable=False),
    sa.Column('project_id', sa.String(length=255), nullable=True),
    sa.Column('user_id', sa.String(length=255), nullable=True),
    sa.Column('volume_id', sa.String(length=36), nullable=False),
    sa.Column('snapshot_id', sa.String(length=36), nullable=True),
    sa.Column('host', sa.String(length=255), nullable=True),
    sa.Column('availability_zone', sa.String(length=255), nullable=True),
    sa.Column('name', sa.String(length=255), nullable=True),
    sa.Column('description', sa.String(length=255), nullable=True),
    sa.Column('container', sa.String(length=255), nullable=True),
    sa.Column('status', sa.String(length=32), nullable=False),
    sa.Column('fail_reason', sa.String(length=255), nullable=True),
    sa.Column('service', sa.String(length=255), nullable=True),
    sa.Column('service_metadata', sa.String(length=255), nullable=True),
    sa.Column('size', sa.Integer(), nullable=False),
    sa.Column('object_count', sa.Integer(), nullable=True),
    sa.Column('parent_id', sa.String(length=36), nullable=True),
    sa.Column('is_incremental', sa.Boolean(), nullable=False),
    sa.Column('num_dependent_backups', sa.Integer(), nullable=False),
    sa.Column('data_timestamp', PRECISE_DATETIME, nullable=True),
    sa.Column('restore_volume_id', sa.String(length=36), nullable=True),
    sa.Column('source_snapshot', sa.String(length=255), nullable=True),
    sa.Column('encryption_key_id', sa.String(length=36), nullable=True),
    sa.Column('progress', sa.Integer(), nullable=True),
    sa.Column('deleted', sa.Boolean(), nullable=False),
    sa.Column('deleted_at', sa.DateTime(), nullable=True),
    sa.Column('created_at', PRECISE_DATETIME, nullable=False),
    sa.Column('updated_at', PRECISE_DATETIME, nullable=True),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('backups', schema=None) as batch_op:
        batch_op.create_index('ix_backups_project_deleted_created',
                              ['project_id', 'deleted', 'created_at'], unique=False)
        batch_op.create_index('ix_backups_volume', ['volume_id'], unique=False)
        batch_op.create_index('ix_backups_parent', ['parent_id'], unique=False)
    op.create_table('backup_metadata',
    sa.Column('id', sa.Integer(), autoincrement=True, nullable=False),
    sa.Column('backup_id', sa.String(length=36), nullable=False),
    sa.Column('key', sa.String(length=255), nullable=False),
    sa.Column('value', sa.String(length=255), nullable=False),
    sa.ForeignKeyConstraint(['backup_id'], ['backups.id'], ),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('backup_id', 'key', name='uq_backup_metadata_key')
    )
    with op.batch_alter_table('volumes', schema=None) as batch_op:
        batch_op.add_column(sa.Column('backup_id', sa.String(length=36), nullable=True))


def downgrade():
    with op.batch_alter_table('volumes', schema=None) as batch_op:
        batch_op.drop_column('backup_id')
    op.drop_table('backup_metadata')
    with op.batch_alter_table('backups', schema=None) as batch_op:
        batch_op.drop_index('ix_backups_parent')
        batch_op.drop_index('ix_backups_volume')
        batch_op.drop_index('ix_backups_project_deleted_created')
    op.drop_table('backups')
