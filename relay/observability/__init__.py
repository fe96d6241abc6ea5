"""What relay tells operators: log lines, Prometheus metrics, and the status that
`relay status` and `GET /api/v2/status` show."""
