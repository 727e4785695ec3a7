"""`pcci run --outdir DIR`: each node's output in DIR/NODE.out and DIR/NODE.err, as
`clush --outdir` and `ansible --tree` keep it. A node's name becomes a file name only if
it cannot leave DIR (no slash, no leading dot) and no symbolic link is followed."""

import os
import re
from typing import Dict, List

# What a worker's name may be to become a file name: never "", ".", "..", nor hold a "/".
SAFE_NAME = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.@:+-]{0,254}\Z")


def file_names(node: str) -> Dict[str, str]:
    """{"stdout": "NODE.out", "stderr": "NODE.err"}; ValueError for a name that could
    escape the directory (pure)."""
    if not SAFE_NAME.match(node):
        raise ValueError("the node name %r cannot be a file name" % node)
    return {"stdout": node + ".out", "stderr": node + ".err"}


def write_outputs(pool: dict, directory: str) -> List[str]:
    """Write each job's stdout and stderr under ``directory`` (made if missing); the
    problems, one per node that could not be written (the others are written)."""
    os.makedirs(directory, exist_ok=True)
    problems = []
    for node, job in pool["jobs"].items():
        try:
            for stream, name in file_names(node).items():
                _write(os.path.join(directory, name), (job.get(stream) or "").encode("utf-8", "surrogateescape"))
        except (ValueError, OSError) as exc:
            problems.append("%s: %s" % (node, exc))
    return problems


def _write(path: str, data: bytes) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW | os.O_CLOEXEC, 0o666)
    with os.fdopen(fd, "wb") as handle:
        handle.write(data)
