"""Background workers: the Kafka deletion consumers and the outbox relay."""
