"""Leaves that anything may import: Prometheus event metrics and structured logs (A7; ADR 0027).

They import nothing of jukinet but the configuration and the error type."""
