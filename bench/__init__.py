"""The throughput benchmark: ``uv run --group bench python -m bench`` (``--help`` for the options).

Every figure comes from real services: a PostgreSQL database and a Redis logical database
the bench creates for itself and removes at the end, and real worker processes.
"""
