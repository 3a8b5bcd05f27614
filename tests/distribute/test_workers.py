"""The worker processes of `sweep --jobs` and `tune --jobs` leave with their parent: one SIGTERM
when it dies, however many threads it had. (As a parent of several threads dies, each thread hands
its children on to the next, and the kernel sends the parent-death signal at every hand-over; a
second SIGTERM would stop a run at once, without its checkpoint.)"""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from tests.conftest import REPO
from tests.kit import wait_for

# A worker's start, without TensorFlow: counts the SIGTERMs it gets, writes the count when asked.
CHILD = """
import contextlib, signal, sys
from tftrain.commands.workers import _die_with_parent
terms = 0
def on_term(signum, frame):
    global terms
    terms += 1
    with contextlib.suppress(OSError):  # stdout may be a pipe to a parent that is gone
        print(f"term {terms}", flush=True)
signal.signal(signal.SIGTERM, on_term)
_die_with_parent(int(sys.argv[2]))
print("ready", flush=True)
sys.stdin.readline()
with open(sys.argv[1], "w") as out:
    out.write(f"terms {terms}")
"""
# Its parent: starts it (sharing its stdin), starts 16 more threads, then is killed (-9).
PARENT = """
import os, signal, subprocess, sys, threading
child = subprocess.Popen([sys.executable, "-c", sys.argv[1], sys.argv[2], str(os.getpid())], stdout=subprocess.PIPE,
                         text=True)
assert child.stdout.readline() == "ready\\n"
for _ in range(16):
    threading.Thread(target=threading.Event().wait, daemon=True).start()
os.kill(os.getpid(), signal.SIGKILL)
"""


LINUX = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="PR_SET_PDEATHSIG is Linux's")


@LINUX
def test_a_worker_gets_one_sigterm_when_its_parent_of_many_threads_is_killed(tmp_path):
    out = tmp_path / "terms.txt"
    parent = subprocess.Popen([sys.executable, "-c", PARENT, CHILD, str(out)], stdin=subprocess.PIPE,
                              env={**os.environ, "PYTHONPATH": str(REPO)})
    assert parent.wait(60) == -9  # reaped: every thread is gone, every parent-death signal sent
    parent.stdin.write(b"report\n")  # the child reads it after the signals that came before
    parent.stdin.close()
    # The child is not ours to wait for (it was handed to init): its report is.
    wait_for(lambda: out.exists() and out.read_text(), "the child's count of SIGTERMs", timeout=60)
    assert out.read_text() == "terms 1"


@LINUX
def test_repeated_parent_death_signals_are_one_sigterm(tmp_path):
    """The hand-overs can come apart in time (a loaded machine schedules the dying threads one by
    one): the first parent-death signal is a SIGTERM, the later ones nothing."""
    from tftrain.commands.workers import PARENT_DEATH

    out = tmp_path / "terms.txt"
    child = subprocess.Popen([sys.executable, "-c", CHILD, str(out), str(os.getpid())], stdin=subprocess.PIPE,
                             stdout=subprocess.PIPE, env={**os.environ, "PYTHONPATH": str(REPO)}, text=True)
    try:
        assert child.stdout.readline() == "ready\n"
        child.send_signal(PARENT_DEATH)
        assert child.stdout.readline() == "term 1\n"  # handled: the next ones come after it
        child.send_signal(PARENT_DEATH)
        child.send_signal(PARENT_DEATH)
        child.stdin.write("report\n")
        child.stdin.close()
        assert child.wait(60) == 0 and out.read_text() == "terms 1"
    finally:
        child.kill()
