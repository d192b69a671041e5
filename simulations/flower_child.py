"""``python -m fedotl.simulations.flower_child SPEC``: the process that runs one Flower simulation.

:func:`fedotl.simulations.federated.run_flower` starts it in a session of its own
and waits.  It is Ray's driver, so every Ray process lands in its process
group.  It dies with its parent, however the parent dies (SIGKILL included): a
watchdog thread sees the parent go and kills the whole group.  A thread and not
a signal handler, because Ray replaces the driver's SIGTERM handler with its own.
"""

from __future__ import annotations

import json
import os
import signal
import sys
import threading
import time

WATCH_S = 0.2


def die_with_parent(parent: int) -> threading.Thread:
    """Kill this process group (the driver and every Ray process) once ``parent`` is gone."""

    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(WATCH_S)
        os.killpg(0, signal.SIGKILL)

    thread = threading.Thread(target=watch, name="fedotl-die-with-parent", daemon=True)
    thread.start()
    return thread


def main(argv: list[str]) -> int:
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the parent decides when to stop
    die_with_parent(int(argv[1]))
    spec = json.loads(open(argv[0]).read())
    from fedotl.simulations.federated import run_flower_here

    run_flower_here(spec["cfg"], int(spec["num_supernodes"]), os.path.dirname(argv[0]),
                    cpus_per_client=int(spec["cpus_per_client"]), verbose=bool(spec["verbose"]))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
