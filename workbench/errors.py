"""Errors the workbench raises on purpose, each with enough context for the user to act."""
from __future__ import annotations

import re
from dataclasses import dataclass

from workbench.secrets import redact

# Exit codes, the same meaning in every command, because CI jobs branch on them. Written here once.
EXIT_OK = 0  # PASS; every call answered; no drift
EXIT_FAIL = 1  # FAIL; some calls failed; drift found
EXIT_INCONCLUSIVE = 2  # the evidence cannot decide (never a usage error: argparse's 2 is remapped to 3)
EXIT_COULD_NOT_RUN = 3  # bad input or usage, missing or damaged store, internal error: no verdict
EXIT_INTERRUPTED = 130  # Ctrl-C, as shells report SIGINT
# Kinds of failed model call that a retry can help: one list, read by the retry policy and by ModelCallError.
RETRYABLE_KINDS = frozenset({"rate_limit", "server", "timeout", "connection"})

VERDICT_EXIT_CODES = {"PASS": EXIT_OK, "FAIL": EXIT_FAIL, "INCONCLUSIVE": EXIT_INCONCLUSIVE}
EXIT_CODES_HELP = ("exit codes: 0 PASS / all answered, 1 FAIL / some items failed, 2 INCONCLUSIVE, "
                   "3 could not run (bad input or usage, missing or damaged store, internal error)")

# What a terminal acts on instead of showing: C0 and C1 controls (ESC sequences set the window title or
# clear the screen), DEL, and Unicode's invisible direction overrides. Newlines and tabs stay.
_CONTROL = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u2028\u2029\u202a-\u202e\u2066-\u2069]")


def printable(text: str) -> str:
    """`text` (an item id, a model's answer, a server's error) fit for a terminal or a log: every
    control character shown as its escape (`\\x1b`), never acted on."""
    return _CONTROL.sub(lambda m: m.group().encode("unicode_escape").decode("ascii"), text)


@dataclass(frozen=True)
class Problem:
    """One defect in user input, located precisely enough to fix it."""

    file: str
    row: int | None  # 1-based data row (header not counted); None when the problem is file-wide
    field: str | None
    message: str

    def __str__(self) -> str:
        where = self.file
        if self.row is not None:
            where += f", row {self.row}"
        if self.field is not None:
            where += f", field '{self.field}'"
        return f"{where}: {self.message}"


class WorkbenchError(Exception):
    """Base class: an error with a message fit to show a user as-is."""


class InputError(WorkbenchError):
    """Bad user input (data, prompts, parameters). Lists every problem found, not just the first."""

    def __init__(self, problems: list[Problem] | Problem | str):
        if isinstance(problems, (Problem, str)):
            problems = [problems]
        self.problems = problems
        lines = [str(p) for p in problems]
        head = f"{len(lines)} problem(s) in the input:" if len(lines) > 1 else "Bad input:"
        super().__init__(head + "\n  - " + "\n  - ".join(lines))


class StoreError(WorkbenchError):
    """A store that cannot be used: missing (when not to be created), not a workbench store, damaged,
    or written by a newer workbench. The message is one line that starts with the store's path."""


class EvidenceError(InputError):
    """The run produced no evidence for an arm (every call failed): a configuration problem to fix,
    never a verdict about the model."""


class UnknownModelError(InputError):
    """A model name whose provider is not registered."""


class ModelCallError(WorkbenchError):
    """A failed model call, classified so the caller knows whether a retry can help.

    `kind` is one of: rate_limit, server, timeout, connection (retryable) and auth,
    bad_request, bad_output, unavailable (not retryable). Messages must never contain secrets.
    `sent=False` says no request left the machine (the adapter refused first, e.g. no API key):
    such a call cost nothing and is counted apart from calls made.
    """

    RETRYABLE = RETRYABLE_KINDS

    def __init__(self, kind: str, message: str, retry_after: float | None = None, status: int | None = None,
                 sent: bool = True):
        self.kind = kind
        self.retry_after = retry_after
        self.status = status
        self.sent = sent
        super().__init__(redact(f"{kind}: {message}"))

    @property
    def retryable(self) -> bool:
        return self.kind in self.RETRYABLE
