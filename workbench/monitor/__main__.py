"""`python -m workbench.monitor drift ...`: the drift command without the main CLI (same options and
exit codes as `workbench drift`: 0 none, 1 drift or alert, 3 could not run)."""
from __future__ import annotations

import argparse
import sys
from typing import Sequence

from workbench.errors import WorkbenchError
from workbench.monitor.cli import add_parser, run


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m workbench.monitor")
    sub = parser.add_subparsers(dest="command", required=True)
    add_parser(sub)
    args = parser.parse_args(argv)
    try:
        return run(args)
    except WorkbenchError as exc:  # InputError included: bad input is "could not run"
        print(f"error: {exc}", file=sys.stderr)
        return 3


if __name__ == "__main__":
    sys.exit(main())
