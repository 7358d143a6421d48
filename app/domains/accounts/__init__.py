"""WhatsApp accounts: connected Cloud API phone numbers, their secrets and health."""
