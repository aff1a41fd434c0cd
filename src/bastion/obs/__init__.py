"""Observability: Prometheus metrics and structured logs that never carry content."""
