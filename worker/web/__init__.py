"""The operations console: an HTTP API and a server-rendered dashboard over the queue, the
job history and the data (``dbjobs serve``). Routes are thin: they call the domain's use
cases and ``worker.ops`` (what operators do, and the read models of jobs and the queue).
"""
