"""Helpers for the judge tests: a scripted judge model (the fake adapter answering what a test says),
readers of the prompts it was sent, and a responses-frame builder."""
from __future__ import annotations

import re
from typing import Callable

import pandas as pd

from workbench.errors import ModelCallError
from workbench.models.base import Request, Response
from workbench.models.fake_adapter import FakeAdapter, FakeOptions

Reply = Callable[[Request], "str | ModelCallError"]


class ScriptedJudge(FakeAdapter):
    """`fake/<model>` whose answer to each request is `reply(request)`; records every request."""

    def __init__(self, reply: Reply, model: str = "scripted-judge"):
        super().__init__(model, FakeOptions())
        self.reply = reply

    def _answer(self, request: Request):
        out = self.reply(request)
        if isinstance(out, ModelCallError):
            return out
        return Response(text=out, finish_reason="stop", prompt_tokens=1, completion_tokens=1)


def prompt_text(request: Request) -> str:
    """The judge prompt as first asked (chat: the first user message; completion: the prompt)."""
    if request.prompt is not None:
        return request.prompt
    return next(m["content"] for m in request.messages if m["role"] == "user")


def attempt(request: Request) -> int:
    """0 for the first ask, n for the n-th re-ask."""
    if request.prompt is not None:
        return request.prompt.count("That answer is not valid.")
    return sum(1 for m in request.messages if m["role"] == "assistant")


def shown(request: Request) -> tuple[str, str]:
    """(response shown as A, response shown as B) in a chat-v1 pairwise prompt."""
    text = prompt_text(request)
    a = re.search(r"\[Response A\]\n(.*?)\n\[End of response A\]", text, re.S)
    b = re.search(r"\[Response B\]\n(.*?)\n\[End of response B\]", text, re.S)
    assert a and b, text
    return a.group(1), b.group(1)


def responses(model: str, texts: dict[str, str | None], errors: dict[str, str] | None = None) -> pd.DataFrame:
    errors = errors or {}
    return pd.DataFrame({
        "item_id": list(texts), "model": model, "sample_index": 0, "response": list(texts.values()),
        "error": [errors.get(k) for k in texts], "cache_key": [f"{model}:{k}" for k in texts],
    })
