"""QoS specs and their keys, a volume type's qos_specs_id, volume type encryption, per-project
default volume types

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-01 21:37:27.582989
"""
import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import mysql

revision = '0004'
down_revision = '0003'
branch_labels = None
depends_on = None

# Microseconds on MySQL/MariaDB too, as common/db/models.py PreciseDateTime.
PRECISE_DATETIME = sa.DateTime().with_variant(mysql.DATETIME(fsp=6), "mysql", "mariadb")


def upgrade():
    op.create_table('qos_specs',
    sa.Column('id', sa.String(length=36), nullable=False),
    sa.Column('name', sa.String(length=255), nullable=False),
    sa.Column('consumer', sa.String(length=255), nullable=False),
    sa.Column('created_at', PRECISE_DATETIME, nullable=False),
    sa.Column('updated_at', PRECISE_DATETIME, nullable=True),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('name', name='uq_qos_specs_name')
    )
    op.create_table('default_volume_types',
    sa.Column('project_id', sa.String(length=255), nullable=False),
    sa.Column('volume_type_id', sa.String(length=36), nullable=False),
    sa.Column('created_at', PRECISE_DATETIME, nullable=False),
    sa.Column('updated_at', PRECISE_DATETIME, nullable=True),
    sa.ForeignKeyConstraint(['volume_type_id'], ['volume_types.id'], ),
    sa.PrimaryKeyConstraint('project_id')
    )
    with op.batch_alter_table('default_volume_types', schema=None) as batch_op:
        batch_op.create_index('ix_default_volume_types_type', ['volume_type_id'], unique=False)

    op.create_table('encryption',
    sa.Column('encryption_id', sa.String(length=36), nullable=False),
    sa.Column('volume_type_id', sa.String(length=36), nullable=False),
    sa.Column('provider', sa.String(length=255), nullable=False),
    sa.Column('cipher', sa.String(length=255), nullable=True),
    sa.Column('key_size', sa.Integer(), nullable=True),
    sa.Column('control_location', sa.String(length=255), nullable=False),
    sa.Column('created_at', PRECISE_DATETIME, nullable=False),
    sa.Column('updated_at', PRECISE_DATETIME, nullable=True),
    sa.ForeignKeyConstraint(['volume_type_id'], ['volume_types.id'], ),
    sa.PrimaryKeyConstraint('encryption_id'),
    sa.UniqueConstraint('volume_type_id', name='uq_encryption_volume_type')
    )
    op.create_table('qos_specs_keys',
    sa.Column('id', sa.Integer(), autoincrement=True, nullable=False),
    sa.Column('qos_specs_id', sa.String(length=36), nullable=False),
    sa.Column('key', sa.String(length=255), nullable=False),
    sa.Column('value', sa.String(length=255), nullable=False),
    sa.ForeignKeyConstraint(['qos_specs_id'], ['qos_specs.id'], ),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('qos_specs_id', 'key', name='uq_qos_specs_keys_key')
    )
    with op.batch_alter_table('volume_types', schema=None) as batch_op:
        batch_op.add_column(sa.Column('qos_specs_id', sa.String(length=36), nullable=True))



def downgrade():
    with op.batch_alter_table('volume_types', schema=None) as batch_op:
        batch_op.drop_column('qos_specs_id')

    op.drop_table('qos_specs_keys')
    op.drop_table('encryption')
    # The index goes with its table (MariaDB refuses to drop an index its foreign key uses).
    op.drop_table('default_volume_types')
    op.drop_table('qos_specs')
