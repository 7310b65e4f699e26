"""guidance links, plate hashes, travel times, incidents

Revision ID: 0014
Revises: 0013
"""
from alembic import op
import sqlalchemy as sa
import sqlmodel  # noqa: F401 - autogenerate may render its types


revision = '0014'
down_revision = '0013'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('guidance_incident',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('link', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
    sa.Column('source', sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
    sa.Column('lane', sa.Integer(), nullable=True),
    sa.Column('state', sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
    sa.Column('raised_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('evidence', sa.JSON(), nullable=False),
    sa.Column('alarm', sa.Integer(), nullable=True),
    sa.Column('decided_by', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
    sa.Column('decided_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('cleared_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('note', sqlmodel.sql.sqltypes.AutoString(length=500), nullable=False),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('guidance_incident', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_guidance_incident_link'), ['link'], unique=False)
        batch_op.create_index(batch_op.f('ix_guidance_incident_state'), ['state'], unique=False)

    op.create_table('guidance_link',
    sa.Column('id', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
    sa.Column('name', sqlmodel.sql.sqltypes.AutoString(length=100), nullable=False),
    sa.Column('site', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
    sa.Column('origin', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
    sa.Column('destination', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
    sa.Column('length_m', sa.Float(), nullable=False),
    sa.Column('free_flow_s', sa.Float(), nullable=False),
    sa.Column('lat', sa.Float(), nullable=True),
    sa.Column('lon', sa.Float(), nullable=True),
    sa.Column('loops', sa.JSON(), nullable=False),
    sa.Column('state', sa.JSON(), nullable=False),
    sa.Column('computed_until', sa.DateTime(timezone=True), nullable=True),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('guidance_link', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_guidance_link_destination'), ['destination'], unique=False)
        batch_op.create_index(batch_op.f('ix_guidance_link_origin'), ['origin'], unique=False)

    op.create_table('guidance_passage',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('read_id', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
    sa.Column('camera', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
    sa.Column('plate_hash', sqlmodel.sql.sqltypes.AutoString(length=32), nullable=False),
    sa.Column('at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('read_id')
    )
    with op.batch_alter_table('guidance_passage', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_guidance_passage_at'), ['at'], unique=False)
        batch_op.create_index('ix_guidance_passage_camera_at', ['camera', 'at'], unique=False)

    op.create_table('guidance_travel_time',
    sa.Column('link', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
    sa.Column('minute', sa.DateTime(timezone=True), nullable=False),
    sa.Column('seconds', sa.Float(), nullable=False),
    sa.Column('sd', sa.Float(), nullable=False),
    sa.Column('samples', sa.Integer(), nullable=False),
    sa.Column('source', sqlmodel.sql.sqltypes.AutoString(length=8), nullable=False),
    sa.Column('confidence', sa.Float(), nullable=False),
    sa.PrimaryKeyConstraint('link', 'minute')
    )


def downgrade() -> None:
    op.drop_table('guidance_travel_time')
    with op.batch_alter_table('guidance_passage', schema=None) as batch_op:
        batch_op.drop_index('ix_guidance_passage_camera_at')
        batch_op.drop_index(batch_op.f('ix_guidance_passage_at'))

    op.drop_table('guidance_passage')
    with op.batch_alter_table('guidance_link', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_guidance_link_origin'))
        batch_op.drop_index(batch_op.f('ix_guidance_link_destination'))

    op.drop_table('guidance_link')
    with op.batch_alter_table('guidance_incident', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_guidance_incident_state'))
        batch_op.drop_index(batch_op.f('ix_guidance_incident_link'))

    op.drop_table('guidance_incident')
