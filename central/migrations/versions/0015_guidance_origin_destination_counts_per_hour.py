"""guidance origin-destination counts per hour

Revision ID: 0015
Revises: 0014
"""
from alembic import op
import sqlalchemy as sa
import sqlmodel  # noqa: F401 - autogenerate may render its types


revision = '0015'
down_revision = '0014'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('guidance_od',
    sa.Column('hour', sa.DateTime(timezone=True), nullable=False),
    sa.Column('origin', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
    sa.Column('destination', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
    sa.Column('trips', sa.Integer(), nullable=False),
    sa.PrimaryKeyConstraint('hour', 'origin', 'destination')
    )


def downgrade() -> None:
    op.drop_table('guidance_od')
