"""Occupancy and rise facts the detectors keep over restarts; planned absences

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-04 12:00:00
"""
import sqlalchemy as sa
from alembic import op

revision = '0011'
down_revision = '0010'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        'detector_facts',
        sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'),
                  autoincrement=True, nullable=False),
        sa.Column('resident_id', sa.String(length=64), nullable=False),
        sa.Column('kind', sa.String(length=16), nullable=False, comment='occupancy, rise'),
        sa.Column('ts_ms', sa.BigInteger(), nullable=False,
                  comment='event time the fact holds from'),
        sa.Column('value', sa.JSON(), nullable=False),
        sa.Column('recorded_ms', sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint('id'),
        sa.UniqueConstraint('resident_id', 'kind', 'ts_ms', name='uq_detector_fact'))
    op.create_index('ix_detector_facts_resident', 'detector_facts',
                    ['resident_id', 'kind', 'ts_ms'])
    op.create_table(
        'absences',
        sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'),
                  autoincrement=True, nullable=False),
        sa.Column('resident_id', sa.String(length=64), nullable=False),
        sa.Column('start_ms', sa.BigInteger(), nullable=False),
        sa.Column('end_ms', sa.BigInteger(), nullable=False),
        sa.Column('reason', sa.String(length=200), nullable=False),
        sa.Column('created_by', sa.String(length=64), nullable=False),
        sa.Column('created_ms', sa.BigInteger(), nullable=False),
        sa.Column('deleted_by', sa.String(length=64), nullable=True),
        sa.Column('deleted_ms', sa.BigInteger(), nullable=True),
        sa.PrimaryKeyConstraint('id'))
    op.create_index('ix_absences_resident', 'absences', ['resident_id', 'end_ms'])


def downgrade() -> None:
    op.drop_index('ix_absences_resident', table_name='absences')
    op.drop_table('absences')
    op.drop_index('ix_detector_facts_resident', table_name='detector_facts')
    op.drop_table('detector_facts')
