"""Workspaces (tenants), users, roles, sign-in sessions and API keys."""
