"""IBIC goals, needs and goal events

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-22 10:05:00
"""
import sqlalchemy as sa
from alembic import op

revision = '0004'
down_revision = '0003'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        'goals',
        sa.Column('resident_id', sa.String(length=64), nullable=False),
        sa.Column('goal_id', sa.String(length=64), nullable=False),
        sa.Column('goal', sa.JSON(), nullable=False),
        sa.Column('changed_by', sa.String(length=64), nullable=False),
        sa.Column('changed_ms', sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint('resident_id', 'goal_id'))
    op.create_table(
        'resident_needs',
        sa.Column('resident_id', sa.String(length=64), nullable=False),
        sa.Column('needs', sa.JSON(), nullable=False),
        sa.Column('changed_by', sa.String(length=64), nullable=False),
        sa.Column('changed_ms', sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint('resident_id'))
    op.create_table(
        'goal_events',
        sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'),
                  autoincrement=True, nullable=False),
        sa.Column('resident_id', sa.String(length=64), nullable=False),
        sa.Column('goal_id', sa.String(length=64), nullable=False),
        sa.Column('event', sa.String(length=16), nullable=False,
                  comment='created, updated, proposed, confirmed, overridden'),
        sa.Column('status', sa.String(length=24), nullable=True,
                  comment='achieved, partly_achieved, not_achieved (or null: no proposal)'),
        sa.Column('by', sa.String(length=64), nullable=False,
                  comment="staff id, or 'gateway'"),
        sa.Column('at_ms', sa.BigInteger(), nullable=False),
        sa.Column('comment', sa.Text(), nullable=True),
        sa.Column('evidence', sa.JSON(), nullable=True),
        sa.PrimaryKeyConstraint('id'))
    op.create_index('ix_goal_events_goal', 'goal_events',
                    ['resident_id', 'goal_id', 'at_ms'], unique=False)


def downgrade() -> None:
    op.drop_index('ix_goal_events_goal', table_name='goal_events')
    op.drop_table('goal_events')
    op.drop_table('resident_needs')
    op.drop_table('goals')
