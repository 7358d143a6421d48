"""wa-inbox: a self-hosted WhatsApp Business inbox."""
