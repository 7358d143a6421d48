"""Business hours, the away message and the greeting (issue 17): settings, rules, the automatic replies."""
