"""The delivery pipeline: fan-out, pump, batch attempts, retry schedule, signing, payloads,
subscription health."""
