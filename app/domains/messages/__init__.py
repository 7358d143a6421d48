"""Messages in and out, their delivery state machine, reactions, edits and media."""
