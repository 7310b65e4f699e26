"""operator scope

Revision ID: 0005
Revises: 0004
"""
from alembic import op
import sqlalchemy as sa
import sqlmodel  # noqa: F401 - autogenerate may render its types


revision = '0005'
down_revision = '0004'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('operator', schema=None) as batch_op:
        # Existing operators keep county-wide scope.
        batch_op.add_column(sa.Column('scope', sa.JSON(), nullable=False,
                                      server_default=sa.text("'[\"*\"]'")))



def downgrade() -> None:
    with op.batch_alter_table('operator', schema=None) as batch_op:
        batch_op.drop_column('scope')

