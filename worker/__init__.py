"""The delivery: configuration, the arq worker and its jobs, cron, serialization, the CLI."""
