"""The outbox: everything between "send this" and WhatsApp's answer (see README.md here)."""
