"""A judge through litellm against the local fault server, scripted to answer like a judge.

Real HTTP, real litellm and the real call layer: both orders reach the server, a transient 500 is
retried by the call layer (not turned into a judge error), a re-ask goes out as a new request,
and a second run is served entirely from the store.
"""
from __future__ import annotations

import json
import re
from typing import Any

import pytest
from tests.fault_server import FaultServer, server_error

from workbench.generation.calls import CallPolicy
from workbench.judges import JudgeSpec, judge_pairwise, judge_pointwise
from workbench.judges.criteria import BUILTIN
from workbench.judges.templates import CHAT_V1, render

from .judge_helpers import responses

POLICY = CallPolicy(concurrency=4, timeout_s=10, max_attempts=3, backoff_base_s=0.01, backoff_max_s=0.05)


class JudgeServer(FaultServer):
    """The fault server, answering chat-v1 judge prompts like a fair judge that prefers 'GOOD'
    (and that rambles without a verdict on its first look at anything mentioning 'RAMBLE')."""

    def _completion(self, body: dict[str, Any], text: str) -> dict[str, Any]:
        reply = super()._completion(body, text)
        reply["choices"][0]["message"]["content"] = self.judge(body["messages"])
        return reply

    @staticmethod
    def judge(messages: list[dict[str, str]]) -> str:
        prompt = next(m["content"] for m in messages if m["role"] == "user")
        reasked = any(m["role"] == "assistant" for m in messages)
        if "RAMBLE" in prompt and not reasked:
            return "Both answers have merits and I find it hard to decide."
        if "[Response]" in prompt:
            response = prompt.split("[Response]\n", 1)[1]
            return f"Looks fine.\nScore: {5 if 'GOOD' in response.split('[End of response]')[0] else 2}"
        a = re.search(r"\[Response A\]\n(.*?)\n\[End of response A\]", prompt, re.S).group(1)
        b = re.search(r"\[Response B\]\n(.*?)\n\[End of response B\]", prompt, re.S).group(1)
        if ("GOOD" in a) == ("GOOD" in b):
            return "They are equivalent.\nVerdict: [[C]]"
        return "One is better.\nVerdict: [[A]]" if "GOOD" in a else "One is better.\nVerdict: [[B]]"


@pytest.fixture
def server():
    with JudgeServer() as s:
        yield s


@pytest.fixture
def spec(server, monkeypatch):
    monkeypatch.setenv("JUDGE_TEST_KEY", "test-key-not-secret")
    return JudgeSpec(model="litellm/openai/judge", options={"api_base": server.url, "api_key_env": "JUDGE_TEST_KEY"})


def test_pairwise_judge_over_http(store, items, server, spec):
    base = responses("base", {"q1": "Paris GOOD", "q2": "five RAMBLE", "q3": "red"})
    cand = responses("cand", {"q1": "Lyon", "q2": "4 GOOD", "q3": "blue"})
    # one transient server error on q1's first order: the call layer retries it
    first_prompt = render(CHAT_V1, "pairwise", BUILTIN["fluency"],
                          {"input": items["input"][0], "reference": "Paris", "response_a": "Paris GOOD",
                           "response_b": "Lyon"}).messages[-1]["content"]
    server.script(first_prompt, server_error(500))

    result = judge_pairwise(store, spec, items, base, cand, criterion="fluency", policy=POLICY)
    v = result.verdicts.set_index("item_id")
    assert v["verdict"].to_dict() == {"q1": "A", "q2": "B", "q3": "tie"}
    assert v["consistent"].all() and v["error"].isna().all()
    assert server.hits[first_prompt] == 2  # the 500, then the answer
    # 6 judgments + 2 re-asks for the rambling first looks at q2 (one per order) + 1 retried 500
    assert server.total_hits() == 9 and result.stats.retries == 2 and result.stats.errors == 0
    shown_first = [re.search(r"\[Response A\]\n(.*?)\n", b["messages"][-1]["content"]) for b in server.bodies]
    assert {m.group(1) for m in shown_first if m} >= {"Paris GOOD", "Lyon"}  # both orders went out
    record = json.loads(store.frame("SELECT judge_spec_json FROM judgments LIMIT 1")["judge_spec_json"][0])
    assert record["adapter"]["api_base"] == server.url and record["options"]["api_key_env"] == "JUDGE_TEST_KEY"
    assert "test-key-not-secret" not in json.dumps(record)
    assert store.frame("SELECT count(*) AS n FROM call_errors")["n"][0] == 0

    again = judge_pairwise(store, spec, items, base, cand, criterion="fluency", policy=POLICY)
    assert server.total_hits() == 9 and again.stats.model_calls == 0
    assert again.verdicts["verdict"].tolist() == result.verdicts["verdict"].tolist()


def test_pointwise_judge_over_http_and_a_dead_server(store, items, server, spec):
    frame = responses("m1", {"q1": "Paris GOOD", "q2": "5"})
    result = judge_pointwise(store, spec, items, frame, "fluency", policy=POLICY)
    assert result.scores["score"].tolist() == [5.0, 2.0] and server.total_hits() == 2

    server.stop()  # nothing listens any more: new judgments fail as call errors, on record
    dead = judge_pointwise(store, spec, items, responses("m1", {"q3": "red"}), "fluency", policy=POLICY)
    row = dead.scores.iloc[0]
    assert pd_isna(row["score"]) and row["error"].startswith("judge model call failed: connection")
    assert store.frame("SELECT count(*) AS n FROM judge_errors")["n"][0] == 1
    # the cached verdicts still come back without a server
    assert judge_pointwise(store, spec, items, frame, "fluency", policy=POLICY).scores["score"].tolist() == [5.0, 2.0]


def pd_isna(value: Any) -> bool:
    import pandas as pd

    return bool(pd.isna(value))
