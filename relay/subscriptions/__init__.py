"""Audit-log subscriptions: their wire models, validation, limits, JSON Patch, config and views."""
