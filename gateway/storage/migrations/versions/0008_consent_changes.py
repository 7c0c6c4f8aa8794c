"""Consent changes made through the API after the registry was loaded (the latest row per
resident is the consent in force)

Revision ID: 0008
Revises: 0007
Create Date: 2026-11-23 15:00:00
"""
import sqlalchemy as sa
from alembic import op

revision = '0008'
down_revision = '0007'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        'consent_changes',
        sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'),
                  autoincrement=True, nullable=False),
        sa.Column('resident_id', sa.String(length=64), nullable=False),
        sa.Column('kinds', sa.JSON(), nullable=False, comment='data kinds consented to'),
        sa.Column('at_ms', sa.BigInteger(), nullable=False),
        sa.Column('by_staff', sa.String(length=64), nullable=False),
        sa.PrimaryKeyConstraint('id'))
    op.create_index('ix_consent_changes_resident', 'consent_changes', ['resident_id', 'id'])


def downgrade() -> None:
    op.drop_index('ix_consent_changes_resident', table_name='consent_changes')
    op.drop_table('consent_changes')
