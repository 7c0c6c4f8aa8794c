"""Failed logins in the database, shared by every worker (the login limit per site)

Revision ID: 0010
Revises: 0009
Create Date: 2026-11-23 08:00:00
"""
import sqlalchemy as sa
from alembic import op

revision = '0010'
down_revision = '0009'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        'login_failures',
        sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'),
                  autoincrement=True, nullable=False),
        sa.Column('key', sa.String(length=200), nullable=False,
                  comment='s:<staff id> or a:<client address>'),
        sa.Column('at_ms', sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint('id'))
    op.create_index('ix_login_failures_key', 'login_failures', ['key', 'at_ms'])
    op.create_index('ix_login_failures_at', 'login_failures', ['at_ms'])


def downgrade() -> None:
    op.drop_index('ix_login_failures_at', table_name='login_failures')
    op.drop_index('ix_login_failures_key', table_name='login_failures')
    op.drop_table('login_failures')
