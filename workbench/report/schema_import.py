"""jsonschema without its IRI grammar: nbformat (papermill, nbconvert) and plotly's notebook renderer
import jsonschema, whose format module imports `rfc3987_syntax` when it is installed (jupyter_events
brings it), and that package compiles 38 Lark grammars at import: 1.7-2.2 s of CPU on the project's
machine, paid by `workbench report` and again by its kernel, for "iri" format checks that nothing
here asks for (nbformat validates without a format checker).
"""
from __future__ import annotations

import sys

GRAMMAR_MODULE = "rfc3987_syntax"


def import_jsonschema() -> None:
    """Import jsonschema (once per process) with `rfc3987_syntax` hidden for that import only: its
    format checker then leaves "iri" and "iri-reference" unchecked, as it does wherever the package
    is not installed. Anything imported later that wants `rfc3987_syntax` itself still gets it."""
    if "jsonschema" in sys.modules or GRAMMAR_MODULE in sys.modules:
        return
    sys.modules[GRAMMAR_MODULE] = None  # type: ignore[assignment]  # `import` raises ImportError
    try:
        import jsonschema  # noqa: F401
    except ImportError:  # not installed: nbformat says so itself when it needs it
        pass
    finally:
        if sys.modules.get(GRAMMAR_MODULE, "") is None:
            del sys.modules[GRAMMAR_MODULE]
