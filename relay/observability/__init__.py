"""What relay tells operators: log lines and Prometheus metrics."""
