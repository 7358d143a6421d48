"""Process health and the app shell pages."""
