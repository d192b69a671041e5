"""Process trees from /proc (Linux): who descends from whom, and how much memory they hold.

The simulation benchmark sums the memory of Flower's and Ray's processes under it, and
``deploy.local_deployment`` stops every process it started together with their children.
Processes are identified by (pid, start time), so a reused pid is never mistaken for one
that has ended.
"""

from __future__ import annotations

from pathlib import Path
from typing import Sequence


def proc_stat(pid: int) -> tuple[int, str, str] | None:
    """(parent pid, state, start time) of a live process; None if it is gone."""
    fields = _stat_fields(pid)
    return None if fields is None else (int(fields[1]), fields[0], fields[19])


def _stat_fields(pid: int) -> list[str] | None:
    """/proc/PID/stat after the command name: state, ppid, pgrp, session, ..."""
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return text[text.rindex(")") + 2 :].split()


def in_sessions(sessions: Sequence[int]) -> list[tuple[int, str]]:
    """Every live process whose session is one of ``sessions``, as (pid, start time).

    A process started with ``start_new_session=True`` leads a session that its children and
    their children join; they stay in it when their parent dies and they are re-parented.
    """
    wanted = set(sessions)
    out = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            fields = _stat_fields(int(entry.name))
            if fields is not None and int(fields[3]) in wanted:
                out.append((int(entry.name), fields[19]))
    return out


def descendants(roots: Sequence[int]) -> list[tuple[int, str]]:
    """Every live descendant of ``roots`` (not the roots), as (pid, start time)."""
    children: dict[int, list[tuple[int, str]]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            st = proc_stat(int(entry.name))
            if st is not None:
                children.setdefault(st[0], []).append((int(entry.name), st[2]))
    out, todo = [], list(roots)
    while todo:
        for child in children.get(todo.pop(), []):
            out.append(child)
            todo.append(child[0])
    return out


def alive(pid: int, start: str) -> bool:
    """Whether the process (pid, start time) still runs (zombies count as ended)."""
    st = proc_stat(pid)
    return st is not None and st[2] == start and st[1] != "Z"


def tree_rss_mb(root: int) -> float:
    """Summed VmRSS of ``root`` and all its descendants, in MB (shared pages count per process)."""
    total_kb = 0
    for pid in [root] + [pid for pid, _ in descendants([root])]:
        try:
            with open(f"/proc/{pid}/status") as f:
                for line in f:
                    if line.startswith("VmRSS:"):
                        total_kb += int(line.split()[1])
                        break
        except OSError:
            continue
    return total_kb / 1024


def become_subreaper() -> bool:
    """Make orphaned descendants re-parent to this process rather than init (Linux ``PR_SET_CHILD_SUBREAPER``).

    Returns whether it took effect; elsewhere orphans go to init as usual.
    """
    import ctypes

    try:
        libc = ctypes.CDLL(None, use_errno=True)
        return libc.prctl(36, 1, 0, 0, 0) == 0  # 36 = PR_SET_CHILD_SUBREAPER
    except (OSError, AttributeError):
        return False


def die_with_parent() -> None:
    """In a child before exec: SIGKILL it when its parent dies, even by kill -9 (Linux ``PR_SET_PDEATHSIG``)."""
    import ctypes
    import signal

    try:
        ctypes.CDLL(None).prctl(1, int(signal.SIGKILL), 0, 0, 0)  # 1 = PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass
