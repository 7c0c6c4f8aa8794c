"""SCAIP hand-off to alarm receiving centres: outbox, cursor, centre status on alerts

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-04 16:00:00
"""
import sqlalchemy as sa
from alembic import op

revision = '0013'
down_revision = '0012'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        'scaip_messages',
        sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'),
                  autoincrement=True, nullable=False),
        sa.Column('centre_id', sa.String(length=32), nullable=False),
        sa.Column('alert_id', sa.BigInteger(), nullable=False),
        sa.Column('alert_event_id', sa.BigInteger(), nullable=False),
        sa.Column('transition', sa.String(length=24), nullable=False),
        sa.Column('mty', sa.String(length=2), nullable=False),
        sa.Column('ref', sa.String(length=32), nullable=False),
        sa.Column('body', sa.Text(), nullable=False),
        sa.Column('created_ms', sa.BigInteger(), nullable=False),
        sa.Column('attempts', sa.Integer(), nullable=False),
        sa.Column('next_try_ms', sa.BigInteger(), nullable=False),
        sa.Column('last_code', sa.Integer(), nullable=True),
        sa.Column('last_snu', sa.Integer(), nullable=True),
        sa.Column('last_reason', sa.String(length=200), nullable=True),
        sa.Column('accepted_ms', sa.BigInteger(), nullable=True),
        sa.PrimaryKeyConstraint('id'),
        sa.UniqueConstraint('ref'))
    op.create_index('ix_scaip_messages_pending', 'scaip_messages',
                    ['centre_id', 'accepted_ms', 'id'])
    op.create_index('ix_scaip_messages_alert', 'scaip_messages', ['alert_id'])
    op.create_table(
        'scaip_cursor',
        sa.Column('centre_id', sa.String(length=32), nullable=False),
        sa.Column('last_event_id', sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint('centre_id'))
    with op.batch_alter_table('alerts') as batch:
        batch.add_column(sa.Column('centre_status', sa.String(length=16), nullable=True))
        batch.add_column(sa.Column('centre_detail', sa.String(length=120), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('alerts') as batch:
        batch.drop_column('centre_detail')
        batch.drop_column('centre_status')
    op.drop_table('scaip_cursor')
    op.drop_index('ix_scaip_messages_alert', table_name='scaip_messages')
    op.drop_index('ix_scaip_messages_pending', table_name='scaip_messages')
    op.drop_table('scaip_messages')
