"""Ctrl-C in tests that need it, wherever the tests run: a CI runner that starts them as a background
job (`cmd &` in a script) starts them with SIGINT ignored, every child inherits that, and a Python
started with SIGINT ignored never raises KeyboardInterrupt, so a test of what Ctrl-C does would fail."""
from __future__ import annotations

import signal


def sigint_as_usual() -> None:
    """`preexec_fn` of a child that must take Ctrl-C: SIGINT's default, so its Python handles it."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)
