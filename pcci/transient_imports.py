"""Modules a long-running service needs for a moment only, let go afterwards.

A worker reads its YAML config once at start (and again on SIGHUP), then runs for
months on hosts as small as a Pi; PyYAML and the ``datetime`` it imports would stay in
memory all that time (~1.1 MB of an idle worker's 26). Modules dropped from
``sys.modules`` are freed only when nothing else holds them, and PyYAML's C extension
(``yaml._yaml``) holds every yaml module for the life of the process, as any C extension
module is kept. So while the config is read, that extension is refused (PyYAML then
uses its pure-Python code, which is what ``yaml.safe_load`` parses with anyway: its
SafeLoader is pure Python); afterwards the modules that came in are dropped, and the
memory they held is reused by what the service imports next.

A process that had the modules already (a test, a master) keeps them: nothing it
holds is refused or dropped.
"""

import contextlib
import sys


@contextlib.contextmanager
def transient(packages, refused=()):
    """Within the block, imports of ``refused`` modules fail (ImportError); after it,
    every module of ``packages`` (the names and what is below them) that the block
    imported is dropped from ``sys.modules``."""
    before = set(sys.modules)
    blocked = [name for name in refused if name not in sys.modules]
    for name in blocked:
        sys.modules[name] = None        # the import system's "refuse this import"
    try:
        yield
    finally:
        for name in blocked:
            if name in sys.modules and sys.modules[name] is None:
                del sys.modules[name]
        for name in set(sys.modules) - before:
            if name.partition(".")[0] in packages:
                del sys.modules[name]
