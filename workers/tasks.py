"""Delivery tasks: fanout, deliver, pump, sweep (being built)."""
