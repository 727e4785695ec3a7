"""Large job outputs in the store, in pieces, the same way on both backends.

A job's output held in a file (a ``SpilledText``, ``result_spill``) is saved as rows of
``job_output`` -- (pool, job position, stream, piece number, bytes), ``PIECE_BYTES`` a
row -- in the transaction that saves its job, whose own column holds "". One value of
many megabytes would be copied whole by SQLite (the bound value, then the record) and
by PyMySQL (the escaped query), and would need a ``max_allowed_packet`` that large on
MariaDB; a piece is bounded. A pool read back gets each such output as a SpilledText
again, copied piece by piece into a file (``attach``).

The SQL is written with ``?``; ``marks`` turns it into the backend's placeholder.
"""

from ..spilled_text import SpilledText, spill_pieces

PIECE_BYTES = 1024 * 1024
STREAMS = ("stdout", "stderr")        # the ``stream`` column: the index in this tuple

INSERT = "INSERT INTO job_output (pool_id, position, stream, seq, data) VALUES (?, ?, ?, ?, ?)"
CLEAR = "DELETE FROM job_output WHERE pool_id = ? AND position = ?"
LISTED = "SELECT position, stream, COUNT(*) FROM job_output WHERE pool_id = ? GROUP BY position, stream"
PIECE = "SELECT data FROM job_output WHERE pool_id = ? AND position = ? AND stream = ? AND seq = ?"


def inline(text):
    """What a job's own column holds of this output."""
    return text if type(text) is str else ""


def spilled_jobs(jobs):
    """The jobs that have an output held in a file."""
    return [job for job in jobs if type(job.stdout) is SpilledText or type(job.stderr) is SpilledText]


def write(execute, jobs, marks="?"):
    """Save the spilled outputs of ``jobs`` (``spilled_jobs``) with ``execute(sql, args)``:
    a job saved again has its rows replaced, never doubled."""
    for job in jobs:
        execute(CLEAR.replace("?", marks), (job.pool_id, job.position))
        for stream, name in enumerate(STREAMS):
            text = getattr(job, name)
            if type(text) is SpilledText:
                for seq, piece in enumerate(text.pieces(PIECE_BYTES)):
                    execute(INSERT.replace("?", marks), (job.pool_id, job.position, stream, seq, piece))


def attach(pool, rows, directory, marks="?"):
    """Give ``pool`` (read from the store) its outputs held in rows, as SpilledTexts;
    ``rows(sql, args)`` runs a query and returns its rows."""
    listed = rows(LISTED.replace("?", marks), (pool.pool_id,))
    if not listed:
        return pool
    by_position = {job.position: job for job in pool.jobs.values()}
    for position, stream, count in listed:
        job = by_position.get(position)
        if job is None or not 0 <= stream < len(STREAMS):
            continue

        def pieces(position=position, stream=stream, count=count):
            for seq in range(count):
                found = rows(PIECE.replace("?", marks), (pool.pool_id, position, stream, seq))
                if found:
                    yield found[0][0]
        setattr(job, STREAMS[stream], spill_pieces(pieces(), directory))
    return pool


def purge(execute, pool_ids, marks="?"):
    """Delete the output rows of these pools (their jobs are deleted with them)."""
    execute("DELETE FROM job_output WHERE pool_id IN (%s)" % ", ".join([marks] * len(pool_ids)), list(pool_ids))
