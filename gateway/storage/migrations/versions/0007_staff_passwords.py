"""Staff passwords for the login (scrypt hashes), audit log indexed by time for the
administrators' audit view

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-23 14:00:00
"""
import sqlalchemy as sa
from alembic import op

revision = '0007'
down_revision = '0006'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        'staff_passwords',
        sa.Column('staff_id', sa.String(length=64), nullable=False),
        sa.Column('hash', sa.String(length=255), nullable=False,
                  comment='scrypt$N$r$p$salt$digest'),
        sa.Column('updated_ms', sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint('staff_id'))
    op.create_index('ix_audit_at', 'audit_log', ['at_ms'])


def downgrade() -> None:
    op.drop_index('ix_audit_at', table_name='audit_log')
    op.drop_table('staff_passwords')
