"""Metrics (Prometheus) and traces (OpenTelemetry) for SREs."""
