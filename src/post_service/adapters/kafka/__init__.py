"""Kafka through aiokafka."""
