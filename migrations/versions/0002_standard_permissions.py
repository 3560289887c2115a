"""Seed the standard permissions and the `admin` role (docs/contract.md §14.1).

Permissions `contacts:read`, `contacts:write`, `contacts:delete`, `stripe:ingest` and `admin`, and a role
`admin` holding `admin`. Rows that already exist (a database where an operator created them) are kept.
Data only, self-contained: the names are copied here, not imported, so the migration never changes.

Revision ID: 0002_standard_permissions
Revises: 0001_initial
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002_standard_permissions"
down_revision: str | None = "0001_initial"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

PERMISSIONS = {
    "contacts:read": "Read contacts: GET /ctms, /ctms/{email_id}, /updates, /identities, /identity",
    "contacts:write": "Create and change contacts: POST /ctms, PUT and PATCH /ctms/{email_id}",
    "contacts:delete": "Erase contacts: DELETE /ctms/{primary_email}",
    "stripe:ingest": "Ingest Stripe objects: POST /stripe",
    "admin": "Every operation",
}
ADMIN_ROLE = "admin"
ADMIN_ROLE_DESCRIPTION = "Passes every permission check"


def upgrade() -> None:
    for name, description in PERMISSIONS.items():
        op.execute(
            sa.text(
                "INSERT INTO permissions (name, description) VALUES (:name, :description) "
                "ON CONFLICT (name) DO NOTHING"
            ).bindparams(name=name, description=description)
        )
    op.execute(
        sa.text(
            "INSERT INTO roles (name, description) VALUES (:name, :description) "
            "ON CONFLICT (name) DO NOTHING"
        ).bindparams(name=ADMIN_ROLE, description=ADMIN_ROLE_DESCRIPTION)
    )
    op.execute(
        sa.text(
            "INSERT INTO role_permissions (role_id, permission_id) "
            "SELECT roles.id, permissions.id FROM roles, permissions "
            "WHERE roles.name = :role AND permissions.name = 'admin' "
            "ON CONFLICT (role_id, permission_id) DO NOTHING"
        ).bindparams(role=ADMIN_ROLE)
    )


def downgrade() -> None:
    # Removing a role or permission removes its grants (ON DELETE CASCADE).
    op.execute(sa.text("DELETE FROM roles WHERE name = :name").bindparams(name=ADMIN_ROLE))
    op.execute(
        sa.text("DELETE FROM permissions WHERE name = ANY(:names)").bindparams(
            sa.bindparam("names", value=list(PERMISSIONS), type_=sa.ARRAY(sa.String()))
        )
    )
