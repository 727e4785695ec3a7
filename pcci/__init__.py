"""PCCI, the Parallel Computer Communication Interface: one master drives many workers."""

__version__ = "0.1.0"
