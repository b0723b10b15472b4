"""services.frozen: a back end frozen by PUT /os-services/freeze refuses management operations

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-02 03:00:00.000000
"""
import sqlalchemy as sa
from alembic import op

revision = '0007'
down_revision = '0006'
branch_labels = None
depends_on = None


def upgrade():
    # server_default so that the rows of services already registered get False, not NULL.
    with op.batch_alter_table('services', schema=None) as batch_op:
        batch_op.add_column(sa.Column('frozen', sa.Boolean(), nullable=False,
                                      server_default=sa.false()))


def downgrade():
    with op.batch_alter_table('services', schema=None) as batch_op:
        batch_op.drop_column('frozen')
