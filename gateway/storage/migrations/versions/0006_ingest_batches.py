"""Ingest dedup log: one row per committed batch instead of one per message; observations
indexed by time alone instead of by device and time

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-23 10:00:00
"""
import sqlalchemy as sa
from alembic import op

revision = '0006'
down_revision = '0005'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        'ingest_batches',
        sa.Column('client_id', sa.String(length=64), nullable=False),
        sa.Column('last_seq', sa.BigInteger(), autoincrement=False, nullable=False,
                  comment="commit order within the session of the batch's last message"),
        sa.Column('first_seq', sa.BigInteger(), nullable=False),
        sa.Column('entries', sa.LargeBinary(), nullable=False,
                  comment='per message: packet id (2 bytes, big-endian) + digest (16 bytes)'),
        sa.Column('committed_ms', sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint('client_id', 'last_seq'))
    # Keep what the old log knew, so a redelivery right after the upgrade is still
    # recognised: each old row becomes a batch of one.
    conn = op.get_bind()
    old = conn.execute(sa.text(
        "SELECT client_id, mid, digest, seq, committed_ms FROM ingest_inflight")).all()
    if old:
        conn.execute(sa.text(
            "INSERT INTO ingest_batches (client_id, last_seq, first_seq, entries, committed_ms) "
            "VALUES (:c, :s, :s, :e, :t)"),
            [{"c": c, "s": s, "e": int(m).to_bytes(2, "big") + bytes.fromhex(d), "t": t}
             for c, m, d, s, t in old])
    op.drop_table('ingest_inflight')
    op.drop_index('ix_observations_device_ts', table_name='observations')
    op.create_index('ix_observations_ts', 'observations', ['ts_ms'])


def downgrade() -> None:
    op.drop_index('ix_observations_ts', table_name='observations')
    op.create_index('ix_observations_device_ts', 'observations', ['device_id', 'ts_ms'])
    op.create_table(
        'ingest_inflight',
        sa.Column('client_id', sa.String(length=64), nullable=False),
        sa.Column('mid', sa.Integer(), autoincrement=False, nullable=False),
        sa.Column('digest', sa.String(length=32), nullable=False),
        sa.Column('seq', sa.BigInteger(), nullable=False,
                  comment='commit order within the session'),
        sa.Column('committed_ms', sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint('client_id', 'mid'))
    conn = op.get_bind()
    latest: dict[tuple[str, int], tuple[str, int, int]] = {}
    rows = conn.execute(sa.text("SELECT client_id, first_seq, entries, committed_ms "
                                "FROM ingest_batches ORDER BY last_seq")).all()
    for client_id, first_seq, entries, committed_ms in rows:
        raw = bytes(entries)
        for i in range(0, len(raw), 18):
            mid = int.from_bytes(raw[i:i + 2], "big")
            latest[(client_id, mid)] = (raw[i + 2:i + 18].hex(), first_seq + i // 18,
                                        committed_ms)
    if latest:
        conn.execute(sa.text(
            "INSERT INTO ingest_inflight (client_id, mid, digest, seq, committed_ms) "
            "VALUES (:c, :m, :d, :s, :t)"),
            [{"c": c, "m": m, "d": d, "s": s, "t": t} for (c, m), (d, s, t) in latest.items()])
    op.drop_table('ingest_batches')
