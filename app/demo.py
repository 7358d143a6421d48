"""Demo mode: a workspace with sign-in printed on the console, on the sandbox."""

from __future__ import annotations

import secrets

from app.domains.workspaces.models import Role, User
from app.runtime import Runtime

DEMO_ADMIN = "admin@demo.wa-inbox.test"
DEMO_AGENT = "agent@demo.wa-inbox.test"


async def seed_demo(runtime: Runtime, sandbox_state=None) -> dict[str, str]:
    """Create the demo workspace once; returns the logins to print."""
    existing = await User.find_one(User.email == DEMO_ADMIN)
    password = secrets.token_urlsafe(9)
    if existing is None:
        workspace, admin = await runtime.people.create_workspace("Demo Coffee Co", DEMO_ADMIN, password, "Demo Admin")
        await runtime.people.create_user(workspace.id, DEMO_AGENT, password, Role.AGENT, "Demo Agent")
    else:  # a persistent database: give the demo users a fresh password we can print
        from app.security import hash_password

        await User.find(User.workspace_id == existing.workspace_id).update({"$set": {"password_hash": hash_password(password)}})
    return {"admin": DEMO_ADMIN, "agent": DEMO_AGENT, "password": password}
