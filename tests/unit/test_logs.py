"""Logging as a user sees it: one line per event, no library tracebacks at the default level."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

SCRIPT = textwrap.dedent(
    """
    import logging, sys
    from bot.logs import configure
    configure(int(sys.argv[1]))
    try:
        raise ConnectionRefusedError("Connect call failed ('127.0.0.1', 9)")
    except OSError:
        logging.getLogger("discord.client").error("Attempting a reconnect in %.2fs", 0.25, exc_info=True)
        logging.getLogger("bot.app").error("a bug of ours", exc_info=True)
    """
)


def run(verbosity: int) -> str:
    result = subprocess.run([sys.executable, "-c", SCRIPT, str(verbosity)], capture_output=True, text=True, cwd=ROOT, check=True)
    return result.stderr


def test_a_librarys_traceback_is_one_line_naming_the_exception_and_ours_are_kept() -> None:
    library, ours = run(0).splitlines()  # one line per event (logfmt keeps a traceback inside its line)
    assert "Attempting a reconnect in 0.25s (ConnectionRefusedError: Connect call failed ('127.0.0.1', 9))" in library
    assert "Traceback" not in library
    assert 'msg="a bug of ours" error="Traceback' in ours  # paperbot's own failures keep theirs


def test_at_minus_vv_library_tracebacks_are_shown_whole() -> None:
    assert run(2).count("Traceback") == 2
