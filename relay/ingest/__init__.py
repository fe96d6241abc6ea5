"""Ingest: Unleash events in, validated, recorded in groups, and handed to the fan-out;
and out again as Unleash's event search, with its labels and summaries."""
