"""The audit log: who changed what in the admin screens and the API, when, and from where (services.py)."""
