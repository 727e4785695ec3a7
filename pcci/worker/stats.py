"""The node's resource stats for each heartbeat, read from /proc and /sys.

A worker runs all day on a Pi; psutil cost it 0.7 MB of memory (measured idle) for these few
numbers, which Linux gives in a handful of files. The figures are psutil's own: CPU
percent over the time since the previous heartbeat (busy = all but idle and iowait,
guest time already counted in user), memory percent of MemTotal not available, disk
percent of the space a user may fill, the hottest hwmon or thermal-zone sensor.
"""

import glob
import os

# hwmon sensors (psutil's first choice), then thermal zones (a Raspberry Pi's SoC).
TEMPERATURE_GLOBS = ("/sys/class/hwmon/hwmon*/temp*_input", "/sys/class/hwmon/hwmon*/device/temp*_input",
                     "/sys/class/thermal/thermal_zone*/temp")


def cpu_times(stat_text):
    """(busy, total) clock ticks from /proc/stat's text (pure)."""
    values = [int(v) for v in stat_text.split("\n", 1)[0].split()[1:]]
    values += [0] * (10 - len(values))
    user, nice, system, idle, iowait, irq, softirq, steal, guest, guest_nice = values[:10]
    total = user + nice + system + idle + iowait + irq + softirq + steal   # guest is inside user and nice
    return total - idle - iowait, total


def busy_percent(before, after):
    """CPU percent between two (busy, total) readings, as psutil.cpu_percent gives it (pure)."""
    if before is None or after[1] <= before[1]:
        return 0.0
    busy = (after[0] - before[0]) / (after[1] - before[1]) * 100
    return round(min(max(busy, 0.0), 100.0), 1)


def meminfo(text):
    """{'MemTotal': bytes, ...} from /proc/meminfo's text (pure)."""
    fields = {}
    for line in text.splitlines():
        name, _, rest = line.partition(":")
        parts = rest.split()
        if parts and parts[0].isdigit():
            fields[name] = int(parts[0]) * (1024 if parts[1:] == ["kB"] else 1)
    return fields


def percent(part, whole):
    return round(part / whole * 100, 1) if whole else 0.0


def _read(path):
    with open(path) as handle:
        return handle.read()


def temperature_celsius(patterns=TEMPERATURE_GLOBS):
    """The hottest sensor reading, or None where the board has no sensor."""
    values = []
    for pattern in patterns:
        for path in glob.glob(pattern):
            try:
                values.append(int(_read(path).strip()) / 1000)
            except (OSError, ValueError):
                continue
    return round(max(values), 1) if values else None


class Stats:
    """Reads the stats; keeps the previous CPU reading for the percent since then."""

    def __init__(self, disk_path="/"):
        self.disk_path = disk_path
        self.previous_cpu = None

    def collect(self):
        stat = _read("/proc/stat")
        cpu = cpu_times(stat)
        cpu_percent, self.previous_cpu = busy_percent(self.previous_cpu, cpu), cpu
        memory = meminfo(_read("/proc/meminfo"))
        total = memory.get("MemTotal", 0)
        available = memory.get("MemAvailable", memory.get("MemFree", 0))
        disk = os.statvfs(self.disk_path)
        used, free = (disk.f_blocks - disk.f_bfree) * disk.f_frsize, disk.f_bavail * disk.f_frsize
        boot = [line.split()[1] for line in stat.splitlines() if line.startswith("btime ")]
        return {
            "cpuPercent": cpu_percent,
            "cpuCount": os.cpu_count(),
            "loadAverage": [round(x, 2) for x in os.getloadavg()],
            "memory": {"total": total, "available": available, "percent": percent(total - available, total)},
            "disk": {"path": self.disk_path, "total": disk.f_blocks * disk.f_frsize, "free": free,
                     "percent": percent(used, used + free)},
            "temperature": temperature_celsius(),
            "bootTime": int(boot[0]) if boot else None,
        }


# The worker's one reader: collect() gives the stats now, with the CPU percent since the
# previous call (0.0 at the first), as psutil.cpu_percent(interval=None) did.
collect = Stats().collect
