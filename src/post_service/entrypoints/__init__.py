"""How the outside world reaches the use cases: gRPC, Kafka consumers, the outbox relay."""
