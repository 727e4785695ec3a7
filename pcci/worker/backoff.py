"""Reconnect delays: exponential with full jitter, so restarted masters are not stampeded."""


def reconnect_delay(attempt, base, cap, random_fraction):
    """Seconds to wait before reconnect `attempt` (0-based); random_fraction is in [0, 1)."""
    ceiling = min(cap, base * (2 ** min(attempt, 30)))
    return max(base / 2, ceiling * random_fraction)
