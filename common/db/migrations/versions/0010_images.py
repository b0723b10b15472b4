"""volumes.image_id (volumes made from an image); image_volume_cache_entries (per back end
pool: storage holding an image's data, that new volumes from the image are cloned from)

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-03 16:00:00.000000
"""
import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import mysql

revision = '0010'
down_revision = '0009'
branch_labels = None
depends_on = None

PRECISE_DATETIME = sa.DateTime().with_variant(mysql.DATETIME(fsp=6), "mysql", "mariadb")


def upgrade():
    with op.batch_alter_table('volumes', schema=None) as batch_op:
        batch_op.add_column(sa.Column('image_id', sa.String(length=36), nullable=True))
    op.create_table('image_volume_cache_entries',
    sa.Column('id', sa.String(length=36), nullable=False),
    sa.Column('host', sa.String(length=255), nullable=False),
    sa.Column('image_id', sa.String(length=36), nullable=False),
    sa.Column('image_updated_at', sa.String(length=64), nullable=True),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('size', sa.Integer(), nullable=False),
    sa.Column('last_used', PRECISE_DATETIME, nullable=False),
    sa.Column('created_at', PRECISE_DATETIME, nullable=False),
    sa.Column('updated_at', PRECISE_DATETIME, nullable=True),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('host', 'image_id', name='uq_image_volume_cache_host_image'),
    )


def downgrade():
    op.drop_table('image_volume_cache_entries')
    with op.batch_alter_table('volumes', schema=None) as batch_op:
        batch_op.drop_column('image_id')
