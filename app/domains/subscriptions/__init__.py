"""Event subscriptions: admins register HTTPS endpoints; we POST signed JSON events to them (issue 8)."""
