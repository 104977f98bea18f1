"""`python -m workbench.optimize optimize|prompts ...`: the optimizer's commands with the workbench's
exit codes, usable before (and besides) their registration in `workbench` itself."""
from __future__ import annotations

import sys
import traceback
from typing import Sequence


def main(argv: Sequence[str] | None = None) -> int:
    from workbench.cli import EXIT_COULD_NOT_RUN, Parser, UsageError
    from workbench.errors import WorkbenchError
    from workbench.optimize.cli import add_parsers
    from workbench.secrets import redact

    parser = Parser(prog="python -m workbench.optimize")
    commands = add_parsers(parser.add_subparsers(dest="command", required=True, parser_class=Parser))
    try:
        args = parser.parse_args(list(sys.argv[1:] if argv is None else argv))
    except UsageError as exc:
        print(f"usage error: {redact(str(exc))}", file=sys.stderr)
        return EXIT_COULD_NOT_RUN
    try:
        return commands[args.command](args)
    except WorkbenchError as exc:
        print(f"error: {redact(str(exc))}", file=sys.stderr)
        return EXIT_COULD_NOT_RUN
    except KeyboardInterrupt:
        print("interrupted: completed calls and trials are stored; re-run the same command to resume", file=sys.stderr)
        return 130
    except Exception as exc:  # an internal error must never read as a result
        if getattr(args, "debug", False):
            traceback.print_exc()
        print(f"internal error: {redact(f'{type(exc).__name__}: {exc}'.splitlines()[0])}", file=sys.stderr)
        return EXIT_COULD_NOT_RUN


if __name__ == "__main__":
    sys.exit(main())
