"""One chat request to an adapter, answered synchronously: the unit of the API adapter tests."""
from __future__ import annotations

from workbench.generation.calls import run_sync
from workbench.errors import ModelCallError
from workbench.models.base import Adapter, Request, Response, Sampling


def ask(adapter: Adapter, text: str, timeout_s: float = 10.0, **sampling) -> Response | ModelCallError:
    request = Request(item_id=text, messages=({"role": "system", "content": "be brief"},
                                              {"role": "user", "content": text}),
                      sampling=Sampling(**sampling))
    return run_sync(adapter.generate([request], timeout_s))[0]
