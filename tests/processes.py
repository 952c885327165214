"""Which processes this test session started, so the leak check counts only those.

The session makes itself a child subreaper (Linux ``PR_SET_CHILD_SUBREAPER``): a process that any test or
any paperbot it ran started, and that outlived its parent, is handed to the session instead of to PID 1.
So "ours" is exactly the living descendants of this process, found by pid through /proc; a server another
program started on the same machine (CI's own Redis, a developer's) is never counted, whoever its parent.
"""

from __future__ import annotations

import ctypes
import os
from pathlib import Path

PR_SET_CHILD_SUBREAPER = 36


def adopt_orphans() -> bool:
    """Make this process the subreaper of everything it starts; False where the kernel will not."""
    try:
        return ctypes.CDLL(None, use_errno=True).prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) == 0
    except (OSError, AttributeError):
        return False


def descendants(root: int | None = None) -> dict[int, str]:
    """The living (not zombie) descendants of ``root`` (this process): pid → command name."""
    root = root or os.getpid()
    children: dict[int, list[int]] = {}
    names: dict[int, str] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue  # it ended while we looked
        name, rest = stat[stat.index("(") + 1 : stat.rindex(")")], stat[stat.rindex(")") + 2 :].split()
        state, parent = rest[0], int(rest[1])
        if state not in ("Z", "X"):
            names[int(entry.name)] = name
            children.setdefault(parent, []).append(int(entry.name))
    found: dict[int, str] = {}
    todo = list(children.get(root, []))
    while todo:
        pid = todo.pop()
        found[pid] = names[pid]
        todo += children.get(pid, [])
    return found
