"""Audit-log subscriptions: their wire models, validation, limits, JSON Patch, config and
integration forms, views with credentials masked and receiver text redacted, and why a policy
includes an event or not (explain, preview)."""
