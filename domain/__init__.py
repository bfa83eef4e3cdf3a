"""The data core: models, payload schemas, repositories, unit of work and use cases.

Nothing here knows about arq, Redis or the worker process.
"""
