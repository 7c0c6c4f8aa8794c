"""Fall risk: daily movement features and scores per resident

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-22 12:00:00
"""
import sqlalchemy as sa
from alembic import op

revision = '0005'
down_revision = '0004'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        'risk_days',
        sa.Column('resident_id', sa.String(length=64), nullable=False),
        sa.Column('day', sa.String(length=10), nullable=False, comment='YYYY-MM-DD local'),
        sa.Column('features', sa.JSON(), nullable=False),
        sa.Column('status', sa.String(length=24), nullable=False,
                  comment='features, scored, insufficient_data, no_model'),
        sa.Column('inputs', sa.JSON(), nullable=True),
        sa.Column('probability', sa.Float(), nullable=True),
        sa.Column('level', sa.String(length=16), nullable=True),
        sa.Column('factors', sa.JSON(), nullable=True),
        sa.Column('model_version', sa.String(length=64), nullable=True),
        sa.Column('computed_ms', sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint('resident_id', 'day'))


def downgrade() -> None:
    op.drop_table('risk_days')
