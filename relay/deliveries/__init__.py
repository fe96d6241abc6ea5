"""Deliveries an operator creates through the API: replays and test sends."""
