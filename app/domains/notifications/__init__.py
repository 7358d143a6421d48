"""WhatsApp notices for admins: Meta's account, number and alert webhooks in words, with a severity,
shown on the number's page and counted in the top navigation until an admin has seen them."""
