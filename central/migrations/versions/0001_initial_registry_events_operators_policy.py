"""initial registry, events, operators, policy

Revision ID: 0001
Revises: 
"""
from alembic import op
import sqlalchemy as sa


revision = '0001'
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('device',
    sa.Column('id', sa.String(length=64), nullable=False),
    sa.Column('kind', sa.String(length=32), nullable=False),
    sa.Column('site', sa.String(length=64), nullable=False),
    sa.Column('lat', sa.Float(), nullable=True),
    sa.Column('lon', sa.Float(), nullable=True),
    sa.Column('groups', sa.JSON(), nullable=False),
    sa.Column('version', sa.String(length=64), nullable=False),
    sa.Column('online', sa.Boolean(), nullable=False),
    sa.Column('last_seen', sa.DateTime(timezone=True), nullable=True),
    sa.Column('health_status', sa.String(length=16), nullable=False),
    sa.Column('health', sa.JSON(), nullable=False),
    sa.Column('desired_version', sa.String(length=64), nullable=False),
    sa.Column('reported_version', sa.String(length=64), nullable=False),
    sa.Column('config_status', sa.String(length=16), nullable=False),
    sa.Column('config_reason', sa.String(length=500), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('device', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_device_kind'), ['kind'], unique=False)
        batch_op.create_index(batch_op.f('ix_device_online'), ['online'], unique=False)
        batch_op.create_index(batch_op.f('ix_device_site'), ['site'], unique=False)

    op.create_table('event',
    sa.Column('seq', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False),
    sa.Column('id', sa.String(length=36), nullable=False),
    sa.Column('device', sa.String(length=64), nullable=False),
    sa.Column('type', sa.String(length=64), nullable=False),
    sa.Column('ts', sa.DateTime(timezone=True), nullable=False),
    sa.Column('received_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('body', sa.JSON(), nullable=False),
    sa.PrimaryKeyConstraint('seq'),
    sa.UniqueConstraint('id')
    )
    with op.batch_alter_table('event', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_event_device'), ['device'], unique=False)

    op.create_table('operator',
    sa.Column('username', sa.String(length=64), nullable=False),
    sa.Column('password_hash', sa.String(length=255), nullable=False),
    sa.Column('role', sa.String(length=16), nullable=False),
    sa.Column('active', sa.Boolean(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('username')
    )
    op.create_table('policylayer',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('scope', sa.String(length=16), nullable=False),
    sa.Column('target', sa.String(length=64), nullable=False),
    sa.Column('version', sa.Integer(), nullable=False),
    sa.Column('values', sa.JSON(), nullable=False),
    sa.Column('author', sa.String(length=64), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('scope', 'target', 'version')
    )
    with op.batch_alter_table('policylayer', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_policylayer_scope'), ['scope'], unique=False)
        batch_op.create_index(batch_op.f('ix_policylayer_target'), ['target'], unique=False)



def downgrade() -> None:
    with op.batch_alter_table('policylayer', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_policylayer_target'))
        batch_op.drop_index(batch_op.f('ix_policylayer_scope'))

    op.drop_table('policylayer')
    op.drop_table('operator')
    with op.batch_alter_table('event', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_event_device'))

    op.drop_table('event')
    with op.batch_alter_table('device', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_device_site'))
        batch_op.drop_index(batch_op.f('ix_device_online'))
        batch_op.drop_index(batch_op.f('ix_device_kind'))

    op.drop_table('device')
