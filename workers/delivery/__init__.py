"""The delivery pipeline: fan-out, pump and sweep, batch attempts, the sender loop, retry
schedule, signing, payloads, subscription health, operational events, telemetry and the
subscription cache."""
