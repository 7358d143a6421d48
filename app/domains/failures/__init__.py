"""Failed messages: the dead-letter view of our messages WhatsApp refused for good (services.py)."""
