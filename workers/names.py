"""Task names, the only thing the API needs to know about the workers."""

FANOUT = "relay.fanout"
DELIVER = "relay.deliver"
PUMP = "relay.pump"
SWEEP = "relay.sweep"
PULL_SOURCES = "relay.pull_sources"
RETENTION = "relay.retention"
