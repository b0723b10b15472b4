"""volume attachments (3.27 attachments API and the legacy attach actions)

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-02 03:10:00.000000
"""
import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import mysql

revision = '0008'
down_revision = '0007'
branch_labels = None
depends_on = None

# Microseconds on MySQL/MariaDB too, as common/db/models.py PreciseDateTime.
PRECISE_DATETIME = sa.DateTime().with_variant(mysql.DATETIME(fsp=6), "mysql", "mariadb")


def upgrade():
    op.create_table('volume_attachment',
    sa.Column('id', sa.String(length=36), nullable=False),
    sa.Column('volume_id', sa.String(length=36), nullable=False),
    sa.Column('project_id', sa.String(length=255), nullable=True),
    sa.Column('instance_uuid', sa.String(length=36), nullable=True),
    sa.Column('attached_host', sa.String(length=255), nullable=True),
    sa.Column('mountpoint', sa.String(length=255), nullable=True),
    sa.Column('attach_status', sa.String(length=255), nullable=False),
    sa.Column('attach_mode', sa.String(length=36), nullable=True),
    sa.Column('attach_time', sa.DateTime(), nullable=True),
    sa.Column('detach_time', sa.DateTime(), nullable=True),
    sa.Column('connector', sa.Text(), nullable=True),
    sa.Column('connection_info', sa.Text(), nullable=True),
    sa.Column('deleted', sa.Boolean(), nullable=False),
    sa.Column('deleted_at', sa.DateTime(), nullable=True),
    sa.Column('created_at', PRECISE_DATETIME, nullable=False),
    sa.Column('updated_at', PRECISE_DATETIME, nullable=True),
    sa.ForeignKeyConstraint(['volume_id'], ['volumes.id'], ),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('volume_attachment', schema=None) as batch_op:
        batch_op.create_index('ix_volume_attachment_volume_deleted', ['volume_id', 'deleted'],
                              unique=False)


def downgrade():
    with op.batch_alter_table('volume_attachment', schema=None) as batch_op:
        batch_op.drop_index('ix_volume_attachment_volume_deleted')

    op.drop_table('volume_attachment')
