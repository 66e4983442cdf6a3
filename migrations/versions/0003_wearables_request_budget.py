"""wearables: per-member request budget, token refresh claim, sleep span

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-26 01:00:00.000000
"""
from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

import app.db

revision: str = '0003'
down_revision: str | None = '0002'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # Existing connections start with nothing counted and no refresh under way.
    with op.batch_alter_table('tracker_connection', schema=None) as batch_op:
        batch_op.add_column(sa.Column('refresh_owner', sqlmodel.sql.sqltypes.AutoString(length=120),
                                      nullable=False, server_default=''))
        batch_op.add_column(sa.Column('refresh_claimed_until', app.db.UTCDateTime(timezone=True),
                                      nullable=True))
        batch_op.add_column(sa.Column('budget_window_start', app.db.UTCDateTime(timezone=True),
                                      nullable=True))
        batch_op.add_column(sa.Column('budget_used', sa.Integer(), nullable=False,
                                      server_default='0'))
        batch_op.add_column(sa.Column('budget_used_before', sa.Integer(), nullable=False,
                                      server_default='0'))
        batch_op.add_column(sa.Column('sleep_span_days', sa.Integer(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('tracker_connection', schema=None) as batch_op:
        batch_op.drop_column('sleep_span_days')
        batch_op.drop_column('budget_used_before')
        batch_op.drop_column('budget_used')
        batch_op.drop_column('budget_window_start')
        batch_op.drop_column('refresh_claimed_until')
        batch_op.drop_column('refresh_owner')
