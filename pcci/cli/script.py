"""`pcci run --script FILE [ARGS]`: a local script run on each worker with the interpreter
its ``#!`` line names, as Ansible's ``script`` and Salt's ``cmd.script`` do.

It travels inside the job's command (pure): the job writes it to a temporary file with a
quoted here-document whose end marker is random, runs the interpreter on that file with
the arguments, and removes the file however the job ends. So no new field is needed, it
is bounded by the API's max_body_bytes like any command, and the job's stdin stays free.
The interpreter is named explicitly, so a /tmp mounted noexec does not stop it; a script
without ``#!`` runs with /bin/sh.
"""

import secrets
import shlex
from typing import List, Sequence

DEFAULT_INTERPRETER = ["/bin/sh"]


class ScriptRefused(ValueError):
    """The file cannot travel as a script (not UTF-8 text, a NUL byte, a bad #! line)."""


def interpreter(text: str) -> List[str]:
    """The #! line's program and its one optional argument, as the kernel reads it."""
    if not text.startswith("#!"):
        return list(DEFAULT_INTERPRETER)
    words = text[2:].split("\n", 1)[0].strip().split(None, 1)
    if not words or not words[0].startswith("/"):
        raise ScriptRefused("its #! line names no absolute interpreter path")
    return words


def script_command(data: bytes, args: Sequence[str]) -> str:
    """The shell command that writes the script on the worker and runs it with ``args``."""
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        raise ScriptRefused("it is not UTF-8 text")
    if "\0" in text:
        raise ScriptRefused("it holds a NUL byte")
    marker = "PCCI_SCRIPT_END_" + secrets.token_hex(8)
    while marker in text:                   # never, but a marker inside would cut the script
        marker = "PCCI_SCRIPT_END_" + secrets.token_hex(8)
    run = " ".join(shlex.quote(word) for word in interpreter(text))
    body = text if text.endswith("\n") else text + "\n"
    return ('pcci_script=$(mktemp) || exit 126\n'
            'trap \'rm -f "$pcci_script"\' EXIT\n'
            'trap \'exit 143\' HUP INT TERM\n'
            "cat > \"$pcci_script\" <<'%s'\n%s%s\n"
            '%s "$pcci_script"%s\n') % (marker, body, marker, run,
                                         "".join(" " + shlex.quote(arg) for arg in args))
