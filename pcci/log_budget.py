"""A budget for log lines about single connections, so a flood cannot flood the log.

Each kind of line (a key such as ``"worker tls"``) may be written ``burst`` times per
``window`` seconds; the rest are counted, and the next line of that kind written says how
many were left out ("12 more suppressed since the last such line"). The budget is per kind, not
per peer: an attacker with 10,000 addresses gets no more lines than one with one.

``LogBudget`` is pure (the caller passes ``now``); ``BudgetedLog`` is the thin shell that
reads a clock and writes to a logger. Every per-connection warning of the master goes
through one ``BudgetedLog``.
"""

import logging
from typing import Callable, Dict, Optional, Tuple

BURST = 5
WINDOW_S = 10.0


class LogBudget:
    def __init__(self, burst: int = BURST, window: float = WINDOW_S):
        self.burst, self.window = burst, window
        self._state: Dict[str, Tuple[float, int, int]] = {}   # key -> (window start, written, suppressed)

    def take(self, key: str, now: float) -> Optional[int]:
        """None when a line of this kind must be left out now; else how many were left out
        since the last one written (0 mostly)."""
        start, written, suppressed = self._state.get(key, (now, 0, 0))
        if now - start >= self.window:
            start, written = now, 0
        if written >= self.burst:
            self._state[key] = (start, written, suppressed + 1)
            return None
        self._state[key] = (start, written + 1, 0)
        return suppressed


class BudgetedLog:
    def __init__(self, logger: logging.Logger, clock: Callable[[], float], budget: Optional[LogBudget] = None):
        self.logger, self.clock = logger, clock
        self.budget = budget or LogBudget()

    def log(self, level: int, key: str, message: str, *args) -> None:
        if not self.logger.isEnabledFor(level):
            return
        left_out = self.budget.take(key, self.clock())
        if left_out is None:
            return
        if left_out:
            message += " (%d more suppressed since the last such line)"
            args += (left_out,)
        self.logger.log(level, message, *args)

    def warning(self, key: str, message: str, *args) -> None:
        self.log(logging.WARNING, key, message, *args)

    def info(self, key: str, message: str, *args) -> None:
        self.log(logging.INFO, key, message, *args)
