"""The ``fedotl`` command line: one module per subcommand, each with a ``register(sub)``.

Every subcommand prints a readable table by default and exactly one JSON
object on stdout with ``--json``.  A user's mistake (a bad path, a malformed
file, an invalid option) ends with ``error: ...`` on stderr and exit status
2, never a traceback.  Every warning (a reader's data policy, a library's
notice) is one ``warning: ...`` line on stderr.
"""

from __future__ import annotations

import argparse
import sys

from fedotl.simulations.cli import data, demo, device, newuser, replay, report, simulate, stream
from fedotl.simulations.dataset import DataFormatError

SUBCOMMANDS = (demo, data, stream, device, replay, simulate, newuser, report)


def build_parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(prog="fedotl", description="Federated and online transfer learning on wearable sensor streams.")
    sub = ap.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for module in SUBCOMMANDS:
        module.register(sub)
    return ap


def one_line_warnings(message, category, filename, lineno, file=None, line=None) -> None:
    """Every warning as one ``warning: ...`` line on stderr (no source file, no code line, no category)."""
    text = " ".join(part.strip() for part in str(message).splitlines() if part.strip())  # a multi-line message too
    print(f"warning: {text}", file=file if file is not None else sys.stderr)


def main(argv: list[str] | None = None) -> int:
    import warnings

    with warnings.catch_warnings():  # restored on return: main() may run inside a larger program
        warnings.showwarning = one_line_warnings  # one formatter for every warning the commands give
        return _run(argv)


def _run(argv: list[str] | None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except (DataFormatError, ValueError, FileNotFoundError, NotADirectoryError, PermissionError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        # The reader went away (e.g. `| head`): not an error worth a traceback.
        sys.stderr.close()
        return 0
