"""snapshots, volume sources, admin and image metadata

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-23 13:02:54.111651
"""
import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import mysql

revision = '0002'
down_revision = '0001'
branch_labels = None
depends_on = None

# Microseconds on MySQL/MariaDB too, as common/db/models.py PreciseDateTime.
PRECISE_DATETIME = sa.DateTime().with_variant(mysql.DATETIME(fsp=6), "mysql", "mariadb")


def upgrade():
    op.create_table('volume_glance_metadata',
    sa.Column('id', sa.Integer(), autoincrement=True, nullable=False),
    sa.Column('volume_id', sa.String(length=36), nullable=True),
    sa.Column('snapshot_id', sa.String(length=36), nullable=True),
    sa.Column('key', sa.String(length=255), nullable=False),
    sa.Column('value', sa.Text(), nullable=False),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('volume_glance_metadata', schema=None) as batch_op:
        batch_op.create_index('ix_volume_glance_metadata_snapshot', ['snapshot_id'], unique=False)
        batch_op.create_index('ix_volume_glance_metadata_volume', ['volume_id'], unique=False)

    op.create_table('snapshots',
    sa.Column('id', sa.String(length=36), nullable=False),
    sa.Column('project_id', sa.String(length=255), nullable=True),
    sa.Column('user_id', sa.String(length=255), nullable=True),
    sa.Column('volume_id', sa.String(length=36), nullable=False),
    sa.Column('name', sa.String(length=255), nullable=True),
    sa.Column('description', sa.String(length=255), nullable=True),
    sa.Column('status', sa.String(length=32), nullable=False),
    sa.Column('progress', sa.String(length=255), nullable=True),
    sa.Column('volume_size', sa.Integer(), nullable=False),
    sa.Column('volume_type_id', sa.String(length=36), nullable=True),
    sa.Column('provider_location', sa.String(length=255), nullable=True),
    sa.Column('deleted', sa.Boolean(), nullable=False),
    sa.Column('deleted_at', sa.DateTime(), nullable=True),
    sa.Column('created_at', PRECISE_DATETIME, nullable=False),
    sa.Column('updated_at', PRECISE_DATETIME, nullable=True),
    sa.ForeignKeyConstraint(['volume_id'], ['volumes.id'], ),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('snapshots', schema=None) as batch_op:
        batch_op.create_index('ix_snapshots_project_deleted_created', ['project_id', 'deleted', 'created_at'], unique=False)
        batch_op.create_index('ix_snapshots_volume', ['volume_id'], unique=False)

    op.create_table('volume_admin_metadata',
    sa.Column('id', sa.Integer(), autoincrement=True, nullable=False),
    sa.Column('volume_id', sa.String(length=36), nullable=False),
    sa.Column('key', sa.String(length=255), nullable=False),
    sa.Column('value', sa.String(length=255), nullable=False),
    sa.ForeignKeyConstraint(['volume_id'], ['volumes.id'], ),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('volume_id', 'key', name='uq_volume_admin_metadata_key')
    )
    op.create_table('snapshot_metadata',
    sa.Column('id', sa.Integer(), autoincrement=True, nullable=False),
    sa.Column('snapshot_id', sa.String(length=36), nullable=False),
    sa.Column('key', sa.String(length=255), nullable=False),
    sa.Column('value', sa.String(length=255), nullable=False),
    sa.ForeignKeyConstraint(['snapshot_id'], ['snapshots.id'], ),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('snapshot_id', 'key', name='uq_snapshot_metadata_key')
    )
    with op.batch_alter_table('volumes', schema=None) as batch_op:
        batch_op.add_column(sa.Column('snapshot_id', sa.String(length=36), nullable=True))
        batch_op.add_column(sa.Column('source_volid', sa.String(length=36), nullable=True))
        batch_op.add_column(sa.Column('previous_status', sa.String(length=32), nullable=True))
        batch_op.add_column(sa.Column('name_id', sa.String(length=36), nullable=True))



def downgrade():
    with op.batch_alter_table('volumes', schema=None) as batch_op:
        batch_op.drop_column('name_id')
        batch_op.drop_column('previous_status')
        batch_op.drop_column('source_volid')
        batch_op.drop_column('snapshot_id')

    op.drop_table('snapshot_metadata')
    op.drop_table('volume_admin_metadata')
    with op.batch_alter_table('snapshots', schema=None) as batch_op:
        batch_op.drop_index('ix_snapshots_volume')
        batch_op.drop_index('ix_snapshots_project_deleted_created')

    op.drop_table('snapshots')
    with op.batch_alter_table('volume_glance_metadata', schema=None) as batch_op:
        batch_op.drop_index('ix_volume_glance_metadata_volume')
        batch_op.drop_index('ix_volume_glance_metadata_snapshot')

    op.drop_table('volume_glance_metadata')
