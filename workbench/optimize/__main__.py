"""`python -m workbench.optimize ...`: the same as `workbench ...` (one parser, one set of exit codes)."""
import sys

from workbench.cli import main

if __name__ == "__main__":
    sys.exit(main())
