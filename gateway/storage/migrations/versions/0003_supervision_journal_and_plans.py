"""supervision journal and plans

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-22 22:27:02.634101
"""
import sqlalchemy as sa
from alembic import op

revision = '0003'
down_revision = '0002'
branch_labels = None
depends_on = None


def upgrade() -> None:

    op.create_table('supervision_checks',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False),
    sa.Column('resident_id', sa.String(length=64), nullable=False),
    sa.Column('unit_id', sa.String(length=64), nullable=False),
    sa.Column('night', sa.String(length=10), nullable=False, comment='evening the night starts, ISO date'),
    sa.Column('due_ms', sa.BigInteger(), nullable=False, comment='planned check time'),
    sa.Column('attempt', sa.Integer(), nullable=False, comment='1, or 2 for the re-check'),
    sa.Column('evaluated_ms', sa.BigInteger(), nullable=False, comment="on the resident's clock"),
    sa.Column('recorded_ms', sa.BigInteger(), nullable=False, comment='wall clock'),
    sa.Column('outcome', sa.String(length=16), nullable=False, comment='ok, attention, unknown'),
    sa.Column('late', sa.Boolean(), nullable=False),
    sa.Column('final', sa.Boolean(), nullable=False),
    sa.Column('recheck_ms', sa.BigInteger(), nullable=True),
    sa.Column('replaces_visit', sa.Boolean(), nullable=False),
    sa.Column('reasons', sa.JSON(), nullable=False),
    sa.Column('evidence', sa.JSON(), nullable=False),
    sa.Column('alert_id', sa.BigInteger(), nullable=True),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('resident_id', 'due_ms', 'attempt', name='uq_supervision_check')
    )
    with op.batch_alter_table('supervision_checks', schema=None) as batch_op:
        batch_op.create_index('ix_supervision_checks_unit_night', ['unit_id', 'night'], unique=False)

    op.create_table('supervision_plans',
    sa.Column('resident_id', sa.String(length=64), nullable=False),
    sa.Column('plan', sa.JSON(), nullable=False),
    sa.Column('changed_by', sa.String(length=64), nullable=False),
    sa.Column('changed_ms', sa.BigInteger(), nullable=False),
    sa.PrimaryKeyConstraint('resident_id')
    )



def downgrade() -> None:

    op.drop_table('supervision_plans')
    with op.batch_alter_table('supervision_checks', schema=None) as batch_op:
        batch_op.drop_index('ix_supervision_checks_unit_night')

    op.drop_table('supervision_checks')

