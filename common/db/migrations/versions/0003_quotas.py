"""quotas: limits per project and class, usage, reservations of operations in flight;
projects' access to private volume types

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-23 13:06:22.795421
"""
import sqlalchemy as sa
from alembic import op

revision = '0003'
down_revision = '0002'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table('quota_classes',
    sa.Column('id', sa.Integer(), autoincrement=True, nullable=False),
    sa.Column('class_name', sa.String(length=255), nullable=False),
    sa.Column('resource', sa.String(length=300), nullable=False),
    sa.Column('hard_limit', sa.Integer(), nullable=False),
    sa.Column('created_at', sa.DateTime(), nullable=False),
    sa.Column('updated_at', sa.DateTime(), nullable=True),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('class_name', 'resource', name='uq_quota_classes_resource')
    )
    op.create_table('quota_reservations',
    sa.Column('id', sa.Integer(), autoincrement=True, nullable=False),
    sa.Column('project_id', sa.String(length=255), nullable=False),
    sa.Column('resource_id', sa.String(length=36), nullable=False),
    sa.Column('resource', sa.String(length=300), nullable=False),
    sa.Column('delta', sa.BigInteger(), nullable=False),
    sa.Column('created_at', sa.DateTime(), nullable=False),
    sa.Column('updated_at', sa.DateTime(), nullable=True),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('quota_reservations', schema=None) as batch_op:
        batch_op.create_index('ix_quota_reservations_resource_id', ['resource_id'], unique=False)

    op.create_table('quota_usages',
    sa.Column('id', sa.Integer(), autoincrement=True, nullable=False),
    sa.Column('project_id', sa.String(length=255), nullable=False),
    sa.Column('resource', sa.String(length=300), nullable=False),
    sa.Column('in_use', sa.BigInteger(), nullable=False),
    sa.Column('created_at', sa.DateTime(), nullable=False),
    sa.Column('updated_at', sa.DateTime(), nullable=True),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('project_id', 'resource', name='uq_quota_usages_resource')
    )
    op.create_table('quotas',
    sa.Column('id', sa.Integer(), autoincrement=True, nullable=False),
    sa.Column('project_id', sa.String(length=255), nullable=False),
    sa.Column('resource', sa.String(length=300), nullable=False),
    sa.Column('hard_limit', sa.Integer(), nullable=False),
    sa.Column('created_at', sa.DateTime(), nullable=False),
    sa.Column('updated_at', sa.DateTime(), nullable=True),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('project_id', 'resource', name='uq_quotas_project_resource')
    )
    op.create_table('volume_type_projects',
    sa.Column('id', sa.Integer(), autoincrement=True, nullable=False),
    sa.Column('volume_type_id', sa.String(length=36), nullable=False),
    sa.Column('project_id', sa.String(length=255), nullable=False),
    sa.Column('created_at', sa.DateTime(), nullable=False),
    sa.Column('updated_at', sa.DateTime(), nullable=True),
    sa.ForeignKeyConstraint(['volume_type_id'], ['volume_types.id'], ),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('volume_type_id', 'project_id', name='uq_volume_type_projects')
    )
    with op.batch_alter_table('volume_type_projects', schema=None) as batch_op:
        batch_op.create_index('ix_volume_type_projects_project', ['project_id'], unique=False)


def downgrade():
    with op.batch_alter_table('volume_type_projects', schema=None) as batch_op:
        batch_op.drop_index('ix_volume_type_projects_project')

    op.drop_table('volume_type_projects')
    op.drop_table('quotas')
    op.drop_table('quota_usages')
    with op.batch_alter_table('quota_reservations', schema=None) as batch_op:
        batch_op.drop_index('ix_quota_reservations_resource_id')

    op.drop_table('quota_reservations')
    op.drop_table('quota_classes')
