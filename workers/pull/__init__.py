"""Pulling events from Unleash servers, and the retention beat task."""
