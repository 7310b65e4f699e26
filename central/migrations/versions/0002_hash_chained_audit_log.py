"""hash-chained audit log

Revision ID: 0002
Revises: 0001
"""
from alembic import op
import sqlalchemy as sa
import sqlmodel  # noqa: F401 - autogenerate may render its types


revision = '0002'
down_revision = '0001'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('auditcheckpoint',
    sa.Column('seq', sa.Integer(), nullable=False),
    sa.Column('hash', sa.String(length=64), nullable=False),
    sa.Column('signature', sa.String(length=256), nullable=False),
    sa.PrimaryKeyConstraint('seq')
    )
    op.create_table('auditrecord',
    sa.Column('seq', sa.Integer(), nullable=False),
    sa.Column('ts', sa.DateTime(timezone=True), nullable=False),
    sa.Column('actor', sa.String(length=64), nullable=False),
    sa.Column('action', sa.String(length=64), nullable=False),
    sa.Column('target', sa.String(length=128), nullable=False),
    sa.Column('detail', sa.JSON(), nullable=False),
    sa.Column('prev_hash', sa.String(length=64), nullable=False),
    sa.Column('hash', sa.String(length=64), nullable=False),
    sa.PrimaryKeyConstraint('seq')
    )
    with op.batch_alter_table('auditrecord', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_auditrecord_action'), ['action'], unique=False)
        batch_op.create_index(batch_op.f('ix_auditrecord_actor'), ['actor'], unique=False)
        batch_op.create_index(batch_op.f('ix_auditrecord_target'), ['target'], unique=False)



def downgrade() -> None:
    with op.batch_alter_table('auditrecord', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_auditrecord_target'))
        batch_op.drop_index(batch_op.f('ix_auditrecord_actor'))
        batch_op.drop_index(batch_op.f('ix_auditrecord_action'))

    op.drop_table('auditrecord')
    op.drop_table('auditcheckpoint')
