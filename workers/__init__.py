"""Celery workers: fan-out, delivery, pump, sweep, pull sources, retention."""
