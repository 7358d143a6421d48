"""Live updates: the WebSocket route and the feed that renders workspace events for one tab."""
