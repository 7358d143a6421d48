"""Agent availability (presence in Redis) and auto-assignment rules (round-robin, least-open)."""
