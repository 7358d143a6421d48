"""Team administration: users (create, invite, deactivate, reset password), teams of agents, API keys."""
