"""A deterministic target and optimizer model behind a real OpenAI-compatible server (the fault
server's HTTP layer, with rule-driven answers), for testing the optimizer without mocks.

`rule-target` answers a chat request with the last user message, transformed by what its prompt
asks for: in UPPERCASE when the system message says "uppercase", ending in a period when the system
message says "period" or a demonstration (an assistant turn) ends in one. So the instruction it
needs is known: "uppercase" and "period" together score 100 chrF against `upper(input) + "."`.

`rule-tool-target` is offered tools: it calls the tool a demonstration in its prompt called (an assistant
turn with tool_calls), with the digits of the last user message as `order_id`; without such a
demonstration it answers in text. So demonstrations that call tools are what it needs.

`rule-judge` scores the response of a pointwise judge prompt: 5 when it is in uppercase and ends in a
period, 3 when it does one of the two, 1 otherwise.

`rule-optimizer` reads GEPA's reflection prompt (the current instruction between the first pair of
```, then examples with "Generated Outputs" and "Feedback ... Expected answer: ...") and, from the
first (worst) example, proposes the current instruction plus the one rule that example shows is
missing, inside ``` as GEPA expects.
"""
from __future__ import annotations

import re
import sys
from pathlib import Path
from typing import Any

try:
    from tests.fault_server import FaultServer
except ImportError:  # run as a script (benchmarks)
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    from fault_server import FaultServer  # type: ignore[no-redef]

UPPER = "Answer in UPPERCASE."
PERIOD = "End every answer with a period."
NOOP = "Be helpful."


def target_reply(messages: list[dict[str, Any]]) -> str:
    system = " ".join(str(m.get("content", "")) for m in messages if m.get("role") == "system").lower()
    demos = [str(m.get("content", "")) for m in messages if m.get("role") == "assistant"]
    text = next((str(m.get("content", "")) for m in reversed(messages) if m.get("role") == "user"), "")
    if "uppercase" in system:
        text = text.upper()
    if ("period" in system or any(d.endswith(".") for d in demos)) and not text.endswith("."):
        text += "."
    return text


def optimizer_reply(prompt: str) -> str:
    current = prompt.split("```")[1].strip() if prompt.count("```") >= 2 else ""
    found = re.search(r"## Generated Outputs\n(.*?)\n\n## Feedback\n(.*?)(?:\n\n|$)", prompt, re.S)
    addition = NOOP
    if found:
        generated = found.group(1).strip()
        expected = found.group(2).split("Expected answer:", 1)[-1].strip()
        if expected.rstrip(".") == expected.rstrip(".").upper() and generated != generated.upper() and UPPER not in current:
            addition = UPPER
        elif expected.endswith(".") and not generated.endswith(".") and PERIOD not in current:
            addition = PERIOD
    new = current if addition in current else f"{current} {addition}".strip()
    return f"Here is a better instruction:\n```\n{new}\n```"


def judge_reply(prompt: str) -> str:
    found = re.search(r"\[Response\]\n(.*?)\n\[End of response\]", prompt, re.S)
    answer = found.group(1).strip() if found else ""
    kept = (answer == answer.upper() and any(c.isalpha() for c in answer)) + answer.endswith(".")
    return f"Checked case and punctuation.\nScore: {1 + 2 * kept}"


def tool_target_calls(messages: list[dict[str, Any]]) -> list[dict[str, Any]]:
    demo = next((m["tool_calls"][0] for m in messages if m.get("role") == "assistant" and m.get("tool_calls")), None)
    if demo is None:
        return []
    text = next((str(m.get("content", "")) for m in reversed(messages) if m.get("role") == "user"), "")
    digits = "".join(c for c in text if c.isdigit())
    return [{"name": demo["function"]["name"], "arguments": {"order_id": int(digits) if digits else None}}]


class RuleServer(FaultServer):
    """The fault server's endpoints and hit counting, answering by the rules above."""

    def _completion(self, body: dict[str, Any], text: str) -> dict[str, Any]:
        if "tool-target" in str(body.get("model", "")) and body.get("tools"):
            calls = tool_target_calls(body.get("messages", []))
            return self._scripted_completion(body, {"calls": calls, "text": None if calls else "I can help."})
        return super()._completion(body, text)

    def _reply(self, body: dict[str, Any], text: str) -> tuple[str, str]:  # type: ignore[override]
        model = str(body.get("model", ""))
        messages = body.get("messages", [])
        if "judge" in model:
            return judge_reply("\n".join(str(m.get("content", "")) for m in messages)), "stop"
        if "optimizer" in model:
            return optimizer_reply(next((m["content"] for m in reversed(messages) if m["role"] == "user"), "")), "stop"
        return target_reply(messages), "stop"


def main() -> None:  # out of process, for benchmarks: prints the base URL
    import argparse
    import threading

    parser = argparse.ArgumentParser()
    parser.add_argument("--latency", type=float, default=0.0)
    args = parser.parse_args()
    server = RuleServer(latency_s=args.latency, record_bodies=False).start()
    print(server.url, flush=True)
    threading.Event().wait()


if __name__ == "__main__":
    main()
