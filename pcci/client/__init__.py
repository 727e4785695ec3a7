"""PCCI's Python client: the REST API as typed calls, for scripts and for the pcci command.

    from pcci.client import Master
    master = Master("http://127.0.0.1:8080", token="...")
    pool = master.run("uptime", "pi[1-4]").wait()
    for node, job in pool.jobs.items():
        print(node, job.state, job.stdout)

Errors are PcciError, carrying the API's ``code`` and HTTP ``status`` (docs/client.md).
"""

__all__ = ["Master", "Pool", "Job", "Worker", "Line", "PcciError"]
_HOMES = {"Master": "master", "Pool": "master", "PcciError": "transport", "Job": "values", "Worker": "values",
          "Line": "values"}


def __getattr__(name):
    # Loaded on first use: the pcci command imports the transport alone and starts faster.
    if name in _HOMES:
        import importlib
        return getattr(importlib.import_module("." + _HOMES[name], __name__), name)
    raise AttributeError("module %r has no attribute %r" % (__name__, name))
