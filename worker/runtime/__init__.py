"""The arq worker process: claim, run one delivery, leases, heartbeats, retries, the outbox."""
