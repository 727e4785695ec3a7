"""GET /pools' pages, bounded by bytes as well as by count.

A page is the newest ``limit`` pools that match, cut further so that what the master
loads and sends stays within ``LIST_BYTES``. Two cuts, each before the work it bounds:

- **before loading** (``load_page``): the database gives each candidate pool's size
  from its own lengths (the row's texts, the number and length of its jobs' worker
  names) without handing over a row; only the pools that fit are then read. Four
  ``limit=1000`` listings of pools of 1,000 jobs each took the master to 1.19 GB before.
- **before sending** (``render_page``): each pool's JSON is measured as it is made, and
  the page ends before the one that would pass the cap (JSON escapes can make a text
  longer than its length in the database).

A page always holds at least one pool, so no pool is ever unlistable; ``next`` names the
last pool given whenever the page was cut (by count or by bytes), so paging with
``before=next`` loses nothing.
"""

import json
from collections.abc import Callable

from .store_rows import JOB_SUMMARY_COLUMNS, POOL_COLUMNS, page_query

LIST_BYTES = 4 * 1024 * 1024
# A listed pool's JSON besides its texts (keys, times, state counts); a job's besides its name.
POOL_OVERHEAD_BYTES = 700
JOB_OVERHEAD_BYTES = 4
# The texts of a pool's row the master reads for a listing (env too: it is read, not shown).
ROW_TEXTS = ("cmd", "env", "cwd", "submitted_by", "submitted_from", "killed_by", "target", "rollout", "run_as",
             "copy")
ROW_BYTES = " + ".join("COALESCE(LENGTH(%s), 0)" % column for column in ROW_TEXTS)


def _marks(count, mark):
    return ",".join([mark] * count)


def fitting(sizes: list, max_bytes: int) -> int:
    """How many of the leading ``sizes`` fit within ``max_bytes`` (at least one, pure)."""
    total = 0
    for count, size in enumerate(sizes):
        total += size
        if total > max_bytes and count:
            return count
    return len(sizes)


def load_page(execute: Callable, mark: str, status, before, limit: int, max_bytes: int = LIST_BYTES):
    """(pool rows, {pool id: job summary rows}, cut) for one page; ``execute(sql, args)``
    runs a query on the backend and gives its rows; ``mark`` is its placeholder."""
    sizes = execute(*page_query(status, before, limit, mark, columns="id, " + ROW_BYTES))
    if not sizes:
        return [], {}, False
    ids = [row[0] for row in sizes]
    jobs = {pool_id: (count, names) for pool_id, count, names in execute(
        "SELECT pool_id, COUNT(*), SUM(LENGTH(worker)) FROM jobs WHERE pool_id IN (%s) GROUP BY pool_id"
        % _marks(len(ids), mark), ids)}
    estimates = [POOL_OVERHEAD_BYTES + int(row_bytes or 0) + int(jobs.get(pool_id, (0, 0))[1] or 0)
                 + JOB_OVERHEAD_BYTES * int(jobs.get(pool_id, (0, 0))[0]) for pool_id, row_bytes in sizes]
    kept = ids[:fitting(estimates, max_bytes)]
    rows = execute("SELECT %s FROM pools WHERE id IN (%s) ORDER BY id DESC" % (POOL_COLUMNS, _marks(len(kept), mark)),
                   kept)
    jobs_by_pool = {row[0]: [] for row in rows}
    for summary in execute("SELECT pool_id, %s FROM jobs WHERE pool_id IN (%s) ORDER BY pool_id, position"
                           % (JOB_SUMMARY_COLUMNS, _marks(len(kept), mark)), kept):
        jobs_by_pool[summary[0]].append(summary[1:])
    return rows, jobs_by_pool, len(kept) < len(ids) or len(ids) == limit


def render_page(pools_json, cut: bool, max_bytes: int = LIST_BYTES) -> str:
    """GET /pools' body (JSON text) from listed pools (``views.pool_json`` without output,
    an iterable made as it is read), ending before the pool that would pass ``max_bytes``."""
    parts, size, last, more = [], 0, None, cut
    for pool in pools_json:
        text = json.dumps(pool, ensure_ascii=False, allow_nan=False)
        length = len(text.encode("utf-8")) if not text.isascii() else len(text)
        if parts and size + length > max_bytes:
            more = True
            break
        parts.append(text)
        size += length + 2
        last = pool["id"]
    return '{"pools": [%s], "next": %s}\n' % (", ".join(parts), json.dumps(last if more else None))
