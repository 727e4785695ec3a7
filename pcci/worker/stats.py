"""The node's resource stats, read with psutil for each heartbeat."""

import os

import psutil


def temperature_celsius():
    """The hottest sensor reading, or None where the board has no sensor."""
    reader = getattr(psutil, "sensors_temperatures", None)
    if reader is None:
        return None
    try:
        readings = reader()
    except (OSError, RuntimeError):
        return None
    values = [entry.current for entries in readings.values() for entry in entries if entry.current is not None]
    return round(max(values), 1) if values else None


def collect(disk_path="/"):
    memory = psutil.virtual_memory()
    disk = psutil.disk_usage(disk_path)
    return {
        "cpuPercent": psutil.cpu_percent(interval=None),
        "cpuCount": psutil.cpu_count(),
        "loadAverage": [round(x, 2) for x in os.getloadavg()],
        "memory": {"total": memory.total, "available": memory.available, "percent": memory.percent},
        "disk": {"path": disk_path, "total": disk.total, "free": disk.free, "percent": disk.percent},
        "temperature": temperature_celsius(),
        "bootTime": int(psutil.boot_time()),
    }
