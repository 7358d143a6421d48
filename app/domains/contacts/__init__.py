"""Contacts: the customers who write to a workspace's numbers."""
