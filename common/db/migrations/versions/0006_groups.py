"""generic volume groups: group types and specs, groups, group snapshots

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-01 22:30:00.000000
"""
import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import mysql

revision = '0006'
down_revision = '0005'
branch_labels = None
depends_on = None

# Microseconds on MySQL/MariaDB too, as common/db/models.py PreciseDateTime.
PRECISE_DATETIME = sa.DateTime().with_variant(mysql.DATETIME(fsp=6), "mysql", "mariadb")


def _stamps():
    return [sa.Column('deleted', sa.Boolean(), nullable=False),
            sa.Column('deleted_at', sa.DateTime(), nullable=True),
            sa.Column('created_at', PRECISE_DATETIME, nullable=False),
            sa.Column('updated_at', PRECISE_DATETIME, nullable=True)]


def upgrade():
    op.create_table('group_types',
                    sa.Column('id', sa.String(length=36), nullable=False),
                    sa.Column('name', sa.String(length=255), nullable=False),
                    sa.Column('description', sa.String(length=255), nullable=True),
                    sa.Column('is_public', sa.Boolean(), nullable=False),
                    *_stamps(),
                    sa.PrimaryKeyConstraint('id'))
    op.create_table('group_type_specs',
                    sa.Column('id', sa.Integer(), autoincrement=True, nullable=False),
                    sa.Column('group_type_id', sa.String(length=36), nullable=False),
                    sa.Column('key', sa.String(length=255), nullable=False),
                    sa.Column('value', sa.String(length=255), nullable=False),
                    sa.ForeignKeyConstraint(['group_type_id'], ['group_types.id'], ),
                    sa.PrimaryKeyConstraint('id'),
                    sa.UniqueConstraint('group_type_id', 'key', name='uq_group_type_specs_key'))
    op.create_table('groups',
                    sa.Column('id', sa.String(length=36), nullable=False),
                    sa.Column('project_id', sa.String(length=255), nullable=True),
                    sa.Column('user_id', sa.String(length=255), nullable=True),
                    sa.Column('host', sa.String(length=255), nullable=True),
                    sa.Column('availability_zone', sa.String(length=255), nullable=True),
                    sa.Column('name', sa.String(length=255), nullable=True),
                    sa.Column('description', sa.String(length=255), nullable=True),
                    sa.Column('group_type_id', sa.String(length=36), nullable=False),
                    sa.Column('status', sa.String(length=32), nullable=False),
                    sa.Column('group_snapshot_id', sa.String(length=36), nullable=True),
                    sa.Column('source_group_id', sa.String(length=36), nullable=True),
                    *_stamps(),
                    sa.PrimaryKeyConstraint('id'))
    with op.batch_alter_table('groups', schema=None) as batch_op:
        batch_op.create_index('ix_groups_project_deleted', ['project_id', 'deleted'],
                              unique=False)
    op.create_table('group_volume_type_mapping',
                    sa.Column('id', sa.Integer(), autoincrement=True, nullable=False),
                    sa.Column('group_id', sa.String(length=36), nullable=False),
                    sa.Column('volume_type_id', sa.String(length=36), nullable=False),
                    sa.ForeignKeyConstraint(['group_id'], ['groups.id'], ),
                    sa.PrimaryKeyConstraint('id'))
    op.create_table('group_snapshots',
                    sa.Column('id', sa.String(length=36), nullable=False),
                    sa.Column('group_id', sa.String(length=36), nullable=False),
                    sa.Column('project_id', sa.String(length=255), nullable=True),
                    sa.Column('user_id', sa.String(length=255), nullable=True),
                    sa.Column('name', sa.String(length=255), nullable=True),
                    sa.Column('description', sa.String(length=255), nullable=True),
                    sa.Column('status', sa.String(length=32), nullable=False),
                    sa.Column('group_type_id', sa.String(length=36), nullable=False),
                    *_stamps(),
                    sa.PrimaryKeyConstraint('id'))
    with op.batch_alter_table('group_snapshots', schema=None) as batch_op:
        batch_op.create_index('ix_group_snapshots_project_deleted', ['project_id', 'deleted'],
                              unique=False)
    with op.batch_alter_table('volumes', schema=None) as batch_op:
        batch_op.add_column(sa.Column('group_id', sa.String(length=36), nullable=True))
    with op.batch_alter_table('snapshots', schema=None) as batch_op:
        batch_op.add_column(sa.Column('group_snapshot_id', sa.String(length=36), nullable=True))


def downgrade():
    with op.batch_alter_table('snapshots', schema=None) as batch_op:
        batch_op.drop_column('group_snapshot_id')
    with op.batch_alter_table('volumes', schema=None) as batch_op:
        batch_op.drop_column('group_id')
    with op.batch_alter_table('group_snapshots', schema=None) as batch_op:
        batch_op.drop_index('ix_group_snapshots_project_deleted')
    op.drop_table('group_snapshots')
    op.drop_table('group_volume_type_mapping')
    with op.batch_alter_table('groups', schema=None) as batch_op:
        batch_op.drop_index('ix_groups_project_deleted')
    op.drop_table('groups')
    op.drop_table('group_type_specs')
    op.drop_table('group_types')
