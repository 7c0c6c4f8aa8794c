"""initial schema

Revision ID: 0001
Revises: 
Create Date: 2026-11-22 20:31:45.793895
"""
import sqlalchemy as sa
from alembic import op

revision = '0001'
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:

    op.create_table('audit_log',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False),
    sa.Column('at_ms', sa.BigInteger(), nullable=False),
    sa.Column('staff_id', sa.String(length=64), nullable=False),
    sa.Column('action', sa.String(length=64), nullable=False),
    sa.Column('resident_id', sa.String(length=64), nullable=True),
    sa.Column('detail', sa.Text(), nullable=True),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('audit_log', schema=None) as batch_op:
        batch_op.create_index('ix_audit_resident', ['resident_id', 'at_ms'], unique=False)

    op.create_table('dead_letters',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False),
    sa.Column('topic', sa.Text(), nullable=False),
    sa.Column('payload', sa.LargeBinary(), nullable=False),
    sa.Column('payload_size', sa.Integer(), nullable=False),
    sa.Column('reason', sa.Text(), nullable=False),
    sa.Column('device_id', sa.String(length=64), nullable=True),
    sa.Column('partial', sa.Boolean(), nullable=False, comment='some readings of the message were still stored'),
    sa.Column('received_ms', sa.BigInteger(), nullable=False),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('dead_letters', schema=None) as batch_op:
        batch_op.create_index('ix_dead_letters_received', ['received_ms'], unique=False)

    op.create_table('device_status',
    sa.Column('device_id', sa.String(length=64), nullable=False),
    sa.Column('resident_id', sa.String(length=64), nullable=False),
    sa.Column('last_seen_ms', sa.BigInteger(), nullable=False),
    sa.Column('battery', sa.Float(), nullable=True),
    sa.Column('linkquality', sa.Integer(), nullable=True),
    sa.Column('availability', sa.String(length=16), nullable=True),
    sa.PrimaryKeyConstraint('device_id')
    )
    op.create_table('ingest_inflight',
    sa.Column('client_id', sa.String(length=64), nullable=False),
    sa.Column('mid', sa.Integer(), autoincrement=False, nullable=False),
    sa.Column('digest', sa.String(length=32), nullable=False),
    sa.Column('seq', sa.BigInteger(), nullable=False, comment='commit order within the session'),
    sa.Column('committed_ms', sa.BigInteger(), nullable=False),
    sa.PrimaryKeyConstraint('client_id', 'mid')
    )
    op.create_table('observations',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False),
    sa.Column('resident_id', sa.String(length=64), nullable=False),
    sa.Column('device_id', sa.String(length=64), nullable=False),
    sa.Column('kind', sa.String(length=16), nullable=False),
    sa.Column('value', sa.JSON(), nullable=True),
    sa.Column('ts_ms', sa.BigInteger(), nullable=False, comment='event time (device, if trusted)'),
    sa.Column('received_ms', sa.BigInteger(), nullable=False),
    sa.Column('room', sa.String(length=64), nullable=True),
    sa.Column('clock_override', sa.Boolean(), nullable=False, comment='device time was implausible and replaced by receive time'),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('observations', schema=None) as batch_op:
        batch_op.create_index('ix_observations_device_ts', ['device_id', 'ts_ms'], unique=False)
        batch_op.create_index('ix_observations_resident_ts', ['resident_id', 'ts_ms'], unique=False)

    op.create_table('settings',
    sa.Column('name', sa.String(length=64), nullable=False),
    sa.Column('value', sa.Text(), nullable=False),
    sa.PrimaryKeyConstraint('name')
    )



def downgrade() -> None:

    op.drop_table('settings')
    with op.batch_alter_table('observations', schema=None) as batch_op:
        batch_op.drop_index('ix_observations_resident_ts')
        batch_op.drop_index('ix_observations_device_ts')

    op.drop_table('observations')
    op.drop_table('ingest_inflight')
    op.drop_table('device_status')
    with op.batch_alter_table('dead_letters', schema=None) as batch_op:
        batch_op.drop_index('ix_dead_letters_received')

    op.drop_table('dead_letters')
    with op.batch_alter_table('audit_log', schema=None) as batch_op:
        batch_op.drop_index('ix_audit_resident')

    op.drop_table('audit_log')

