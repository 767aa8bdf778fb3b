"""The development server's demo login for the admin and its dashboard: ``admin`` / ``admin``.

Created by ``python -m testproject.devserver`` (``make run``) and the screenshot script only, in their local
database, never by the settings or a migration: a real deployment never gets this account.
"""

from __future__ import annotations

DEMO_USERNAME = "admin"
DEMO_PASSWORD = "admin"


def ensure_demo_admin() -> bool:
    """Create the superuser ``admin``/``admin`` unless a user of that name exists; return whether it was created."""
    from django.contrib.auth import get_user_model

    users = get_user_model()
    if users.objects.filter(username=DEMO_USERNAME).exists():
        return False
    users.objects.create_superuser(DEMO_USERNAME, "admin@example.invalid", DEMO_PASSWORD)
    return True
