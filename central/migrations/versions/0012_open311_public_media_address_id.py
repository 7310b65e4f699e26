"""complaints: Open311 public flag, address_id, media_url, 4,000-character text

Revision ID: 0012
Revises: 0011
"""
from alembic import op
import sqlalchemy as sa
import sqlmodel  # noqa: F401 - autogenerate may render its types


revision = '0012'
down_revision = '0011'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('complaint', schema=None) as batch_op:
        # GeoReport v2 allows descriptions of 4,000 characters.
        batch_op.alter_column(
            'description',
            existing_type=sqlmodel.sql.sqltypes.AutoString(length=2000),
            type_=sqlmodel.sql.sqltypes.AutoString(length=4000),
            existing_nullable=False,
        )
        # Existing complaints stay private: nothing was published with consent.
        batch_op.add_column(sa.Column('public', sa.Boolean(), nullable=False,
                                      server_default=sa.false()))
        batch_op.add_column(sa.Column(
            'address_id', sqlmodel.sql.sqltypes.AutoString(length=64),
            nullable=False, server_default=''))
        batch_op.add_column(sa.Column(
            'media_url', sqlmodel.sql.sqltypes.AutoString(length=1000),
            nullable=False, server_default=''))


def downgrade() -> None:
    with op.batch_alter_table('complaint', schema=None) as batch_op:
        batch_op.drop_column('media_url')
        batch_op.drop_column('address_id')
        batch_op.drop_column('public')
        batch_op.alter_column(
            'description',
            existing_type=sqlmodel.sql.sqltypes.AutoString(length=4000),
            type_=sqlmodel.sql.sqltypes.AutoString(length=2000),
            existing_nullable=False,
        )
