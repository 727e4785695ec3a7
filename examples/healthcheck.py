#!/usr/bin/env python3
"""Health check: every INTERVAL seconds, store each node's resource stats in a database.

    healthcheck.py --db stats.sqlite3                      # SQLite file
    healthcheck.py --db mysql://user:pass@host:3306/pcci   # MariaDB/MySQL, InnoDB (needs PyMySQL)

Reads GET /workers from the master (PCCI_URL / PCCI_TOKEN, as the pcci command does)
and writes one row per node per tick to the table `node_stats`, created if missing.
If the master or the database is briefly away, it logs, keeps what it already read in
memory and retries on the next tick: a row read is never dropped (up to --max-backlog).
Ctrl-C flushes what it can and stops.
"""

import argparse
import logging
import os
import signal
import sqlite3
import sys
import threading
import time
from urllib.parse import unquote, urlparse

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
from pcci.client import Master, PcciError  # noqa: E402

log = logging.getLogger("healthcheck")

COLUMNS = ("taken_at", "node", "online", "cpu_percent", "load_1m", "memory_percent", "disk_percent",
           "temperature_c", "running_jobs")


def rows_from_workers(workers, taken_at):
    """One row per node from the master's workers (pure)."""
    rows = []
    for worker in workers:
        stats = worker.stats
        load = stats.get("loadAverage") or [None]
        rows.append((taken_at, worker.name, int(worker.online), stats.get("cpuPercent"), load[0],
                     (stats.get("memory") or {}).get("percent"), (stats.get("disk") or {}).get("percent"),
                     stats.get("temperature"), len(worker.running_jobs)))
    return rows


class SqliteSink:
    def __init__(self, path):
        self.path = path

    def write(self, rows):
        db = sqlite3.connect(self.path, timeout=5)
        try:
            with db:
                db.execute("CREATE TABLE IF NOT EXISTS node_stats (id INTEGER PRIMARY KEY, taken_at REAL NOT NULL, "
                           "node TEXT NOT NULL, online INTEGER NOT NULL, cpu_percent REAL, load_1m REAL, "
                           "memory_percent REAL, disk_percent REAL, temperature_c REAL, running_jobs INTEGER)")
                db.executemany("INSERT INTO node_stats (%s) VALUES (%s)" % (", ".join(COLUMNS), ", ".join("?" * 9)),
                               rows)
        finally:
            db.close()


class MysqlSink:
    """MariaDB/MySQL through PyMySQL; a fresh connection per batch survives server restarts."""

    def __init__(self, url):
        import pymysql  # only this sink needs it
        self.pymysql = pymysql
        parts = urlparse(url)
        self.params = dict(host=parts.hostname or "127.0.0.1", port=parts.port or 3306,
                           user=unquote(parts.username or ""), password=unquote(parts.password or ""),
                           database=parts.path.lstrip("/"), connect_timeout=5, autocommit=False)

    def write(self, rows):
        db = self.pymysql.connect(**self.params)
        try:
            with db.cursor() as cursor:
                cursor.execute(
                    "CREATE TABLE IF NOT EXISTS node_stats (id BIGINT AUTO_INCREMENT PRIMARY KEY, "
                    "taken_at DOUBLE NOT NULL, node VARCHAR(255) NOT NULL, online TINYINT NOT NULL, "
                    "cpu_percent DOUBLE, load_1m DOUBLE, memory_percent DOUBLE, disk_percent DOUBLE, "
                    "temperature_c DOUBLE, running_jobs INT, KEY by_node_time (node, taken_at)) ENGINE=InnoDB")
                cursor.executemany("INSERT INTO node_stats (%s) VALUES (%s)"
                                   % (", ".join(COLUMNS), ", ".join(["%s"] * 9)), rows)
            db.commit()
        finally:
            db.close()


def make_sink(target):
    if target.startswith(("mysql://", "mariadb://")):
        return MysqlSink(target)
    return SqliteSink(target)


def run(master, sink, interval, ticks, max_backlog, stop):
    backlog = []
    tick = 0
    while not stop.is_set() and (ticks is None or tick < ticks):
        tick += 1
        try:
            backlog += rows_from_workers(master.workers(), time.time())
        except PcciError as exc:
            log.warning("master unavailable, no stats this tick: %s", exc)
        if len(backlog) > max_backlog:
            log.error("backlog over %d rows: dropping the oldest %d", max_backlog, len(backlog) - max_backlog)
            del backlog[:len(backlog) - max_backlog]
        backlog = flush(sink, backlog)
        if ticks is None or tick < ticks:
            stop.wait(interval)
    return flush(sink, backlog)


def flush(sink, backlog):
    if not backlog:
        return backlog
    try:
        sink.write(backlog)
        log.info("stored %d row(s)", len(backlog))
        return []
    except Exception as exc:  # any database error: keep the rows, retry next tick
        log.warning("database unavailable, keeping %d row(s) for the next tick: %s", len(backlog), exc)
        return backlog


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--db", required=True, help="SQLite path or mysql://user:pass@host:port/database")
    parser.add_argument("--interval", type=float, default=10.0, help="seconds between ticks (default 10)")
    parser.add_argument("--ticks", type=int, help="stop after this many ticks (default: run until Ctrl-C)")
    parser.add_argument("--max-backlog", type=int, default=100000, help="rows kept while the database is away")
    parser.add_argument("--url")
    parser.add_argument("--token")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    stop = threading.Event()
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    left = run(Master.from_environment(args.url, args.token), make_sink(args.db), args.interval, args.ticks, args.max_backlog, stop)
    if left:
        log.error("stopped with %d row(s) not stored", len(left))
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
