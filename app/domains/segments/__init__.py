"""Segments: saved, named contact filters (the contacts page, broadcasts and automations select by them)."""
