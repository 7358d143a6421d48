"""Analytics: message volumes, delivery and read rates, failures, first-response time (issue 8)."""
