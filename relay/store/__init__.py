"""The Redis store: every key in `keys`, every redis-py error translated in `client`."""
