"""Meta's webhooks: the public endpoint, the durable raw-event store and the ingestion of every change."""
