"""The master service: the REST API, the worker port, and the pool history."""
