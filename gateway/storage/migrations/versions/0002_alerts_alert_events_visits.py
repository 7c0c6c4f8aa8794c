"""alerts, alert events, visits

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-22 21:16:03.381613
"""
import sqlalchemy as sa
from alembic import op

revision = '0002'
down_revision = '0001'
branch_labels = None
depends_on = None


def upgrade() -> None:

    op.create_table('alert_events',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False),
    sa.Column('alert_id', sa.BigInteger(), nullable=False),
    sa.Column('unit_id', sa.String(length=64), nullable=False),
    sa.Column('transition', sa.String(length=24), nullable=False),
    sa.Column('by', sa.String(length=64), nullable=True),
    sa.Column('at_ms', sa.BigInteger(), nullable=False),
    sa.Column('note', sa.Text(), nullable=True),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('alert_events', schema=None) as batch_op:
        batch_op.create_index('ix_alert_events_alert', ['alert_id'], unique=False)

    op.create_table('alerts',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False),
    sa.Column('resident_id', sa.String(length=64), nullable=False),
    sa.Column('unit_id', sa.String(length=64), nullable=False),
    sa.Column('kind', sa.String(length=32), nullable=False),
    sa.Column('priority', sa.Integer(), nullable=False),
    sa.Column('key', sa.String(length=160), nullable=False, comment='condition; one unresolved per key'),
    sa.Column('status', sa.String(length=16), nullable=False, comment='open, acknowledged, resolved'),
    sa.Column('escalated', sa.Boolean(), nullable=False),
    sa.Column('condition_cleared', sa.Boolean(), nullable=False),
    sa.Column('device_id', sa.String(length=64), nullable=True),
    sa.Column('room', sa.String(length=64), nullable=True),
    sa.Column('during_visit', sa.String(length=64), nullable=True, comment='staff id if during a visit'),
    sa.Column('detail', sa.JSON(), nullable=True),
    sa.Column('event_ms', sa.BigInteger(), nullable=False, comment='when the condition arose'),
    sa.Column('raised_ms', sa.BigInteger(), nullable=False),
    sa.Column('escalation_due_ms', sa.BigInteger(), nullable=False),
    sa.Column('acknowledged_by', sa.String(length=64), nullable=True),
    sa.Column('acknowledged_ms', sa.BigInteger(), nullable=True),
    sa.Column('resolved_by', sa.String(length=64), nullable=True),
    sa.Column('resolved_ms', sa.BigInteger(), nullable=True),
    sa.Column('outcome', sa.String(length=32), nullable=True),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('alerts', schema=None) as batch_op:
        batch_op.create_index('ix_alerts_key', ['key', 'status'], unique=False)
        batch_op.create_index('ix_alerts_resident', ['resident_id', 'raised_ms'], unique=False)
        batch_op.create_index('ix_alerts_status', ['status', 'escalation_due_ms'], unique=False)

    op.create_table('visits',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False),
    sa.Column('resident_id', sa.String(length=64), nullable=False),
    sa.Column('staff_id', sa.String(length=64), nullable=False),
    sa.Column('device_id', sa.String(length=64), nullable=False),
    sa.Column('start_ms', sa.BigInteger(), nullable=False),
    sa.Column('end_ms', sa.BigInteger(), nullable=True),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('visits', schema=None) as batch_op:
        batch_op.create_index('ix_visits_resident', ['resident_id', 'start_ms'], unique=False)




def downgrade() -> None:

    with op.batch_alter_table('visits', schema=None) as batch_op:
        batch_op.drop_index('ix_visits_resident')

    op.drop_table('visits')
    with op.batch_alter_table('alerts', schema=None) as batch_op:
        batch_op.drop_index('ix_alerts_status')
        batch_op.drop_index('ix_alerts_resident')
        batch_op.drop_index('ix_alerts_key')

    op.drop_table('alerts')
    with op.batch_alter_table('alert_events', schema=None) as batch_op:
        batch_op.drop_index('ix_alert_events_alert')

    op.drop_table('alert_events')

