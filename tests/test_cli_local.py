"""The pcci command's pure pieces: a script as a command, node names as file names."""

import subprocess

import pytest

from pcci.cli import outdir
from pcci.cli.script import ScriptRefused, interpreter, script_command


def run_locally(command):
    return subprocess.run(["/bin/sh", "-c", command], capture_output=True, text=True, timeout=30)


def test_a_script_runs_with_its_interpreter_and_arguments_and_leaves_no_file(tmp_path):
    script = b'#!/usr/bin/env python3\nimport os, sys\nprint(sys.argv[1:], os.path.exists(sys.argv[0]))\nsys.exit(4)'
    done = run_locally("TMPDIR=%s; export TMPDIR; %s" % (tmp_path, script_command(script, ["a b", "it's"])))
    assert (done.returncode, done.stdout) == (4, "['a b', \"it's\"] True\n")
    assert list(tmp_path.iterdir()) == []


def test_a_script_holding_the_here_document_quirks_arrives_unchanged():
    text = "#!/bin/sh\ncat <<'EOF'\n$HOME `x` \\n EOF\nEOF\n"
    done = run_locally(script_command(text.encode(), []))
    assert done.stdout == "$HOME `x` \\n EOF\n"


def test_interpreter_is_read_as_the_kernel_reads_it_and_binary_is_refused():
    assert interpreter("echo hi") == ["/bin/sh"]
    assert interpreter("#!/usr/bin/env  python3 -u\n") == ["/usr/bin/env", "python3 -u"]
    with pytest.raises(ScriptRefused):
        interpreter("#!python\n")
    with pytest.raises(ScriptRefused):
        script_command(b"\xff\xfe", [])


def test_node_names_that_could_leave_the_directory_are_refused():
    assert outdir.file_names("pi-1.lan") == {"stdout": "pi-1.lan.out", "stderr": "pi-1.lan.err"}
    for bad in ("", ".", "..", "../x", "a/b", ".hidden", "x\n"):
        with pytest.raises(ValueError):
            outdir.file_names(bad)


def test_outdir_never_follows_a_symbolic_link(tmp_path):
    target = tmp_path / "victim"
    target.write_text("keep")
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "pi1.out").symlink_to(target)
    jobs = {"pi1": {"stdout": "x", "stderr": ""}, "pi2": {"stdout": "y\n", "stderr": "e\n"}}
    problems = outdir.write_outputs({"jobs": jobs}, str(tmp_path / "out"))
    assert len(problems) == 1 and problems[0].startswith("pi1: ")
    assert target.read_text() == "keep"
    assert (tmp_path / "out" / "pi2.out").read_text() == "y\n" and (tmp_path / "out" / "pi2.err").read_text() == "e\n"
