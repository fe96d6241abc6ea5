"""Ingest: Unleash events in, validated, recorded in groups, and handed to the fan-out."""
