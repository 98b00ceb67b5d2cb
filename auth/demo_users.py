"""One user per role for the demo, with fresh passwords printed at start-up."""
from __future__ import annotations

import secrets
from typing import Any

from data.simulator import DEVELOPERS

# The developer is a simulated author, so "My reviews" shows that person's real work.
DEMO_USERS = {"executive": "exec", "qa_lead": "qa", "developer": DEVELOPERS[0], "operations": "ops", "admin": "admin"}


def ensure_demo_users(services: Any) -> list[tuple[str, str, str]]:
    """(name, role, password) for each demo user; passwords are new on every start."""
    out = []
    for role, name in DEMO_USERS.items():
        password = secrets.token_urlsafe(9)
        if services.users.get(name) is None:
            services.users.add(name, [role], password)
        else:
            services.users.set_roles(name, [role])
            services.users.set_password(name, password)
            services.users.set_disabled(name, False)
        out.append((name, role, password))
    return out
