"""The API's routes, one module per area: ingest and Unleash's events and event search,
subscriptions and why they match (explain), their deliveries and the queues across
them, tokens, flag events, client metrics, integration manifests, the console, status,
health and Prometheus metrics. Each module's `router` is mounted by `create_app`
(relay/api/app.py)."""
