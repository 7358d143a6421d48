"""Who sees which conversations: access by number and by team (issue 14, item 22)."""
