"""Workspace vocabularies admins define: canned responses, conversation labels, custom contact attributes."""
