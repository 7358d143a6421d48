"""Conversations: one thread per (number, contact), with status, assignment and the 24-h window."""
