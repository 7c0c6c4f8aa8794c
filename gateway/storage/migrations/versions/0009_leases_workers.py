"""Scale-out: leases on MQTT session slots and resident partitions, and live workers

Revision ID: 0009
Revises: 0008
Create Date: 2026-11-23 10:00:00
"""
import sqlalchemy as sa
from alembic import op

revision = '0009'
down_revision = '0008'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        'leases',
        sa.Column('name', sa.String(length=64), nullable=False, comment='slot:<n> or part:<n>'),
        sa.Column('holder', sa.String(length=128), nullable=False, comment='worker id'),
        sa.Column('expires_ms', sa.BigInteger(), nullable=False),
        sa.Column('acquired_ms', sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint('name'))
    op.create_table(
        'workers',
        sa.Column('id', sa.String(length=128), nullable=False),
        sa.Column('heartbeat_ms', sa.BigInteger(), nullable=False),
        sa.Column('started_ms', sa.BigInteger(), nullable=False),
        sa.Column('api', sa.String(length=256), nullable=True,
                  comment='where its API listens, for operators'),
        sa.PrimaryKeyConstraint('id'))
    if op.get_bind().dialect.name == 'postgresql':
        # the database's clock in ms: lease expiry never depends on a worker's clock
        op.execute("CREATE OR REPLACE FUNCTION tillsyn_now_ms() RETURNS bigint LANGUAGE sql "
                   "VOLATILE AS 'SELECT (EXTRACT(EPOCH FROM clock_timestamp()) * 1000)::bigint'")


def downgrade() -> None:
    if op.get_bind().dialect.name == 'postgresql':
        op.execute("DROP FUNCTION IF EXISTS tillsyn_now_ms()")
    op.drop_table('workers')
    op.drop_table('leases')
