"""Message templates: synced from Meta, created and deleted by admins, statuses kept up to date."""
