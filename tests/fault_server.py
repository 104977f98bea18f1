"""An OpenAI-compatible server on 127.0.0.1 that fails on command, for testing the call layer.

It serves `/v1/chat/completions` and `/v1/completions`. A request that declares tools is answered
with the calls scripted for its item (and model) by `answer_with_calls`, in OpenAI's `tool_calls`
form; `answer_with_text` scripts any other answer (a JSON object for a response_format, say).
Tests script what each item gets
(latency, 429 with Retry-After, 500, malformed JSON, a connection that never answers, any
status) and read back how often each item was hit, how many requests were in flight at once,
and every request body. The item id is the text of the last user message (or the prompt, or an
`X-Item-Id` header), so nothing test-specific leaks into the adapter.

In-process (tests): `FaultServer().start()` runs aiohttp on its own loop in a daemon thread;
`fault_server` is a pytest fixture. Out of process (benchmarks, so the server does not share the
client's GIL): `python tests/fault_server.py --latency 0.2` prints the base URL, and
`/_control/*` endpoints script and read it over HTTP.
"""
from __future__ import annotations

import argparse
import asyncio
import collections
import json
import threading
import time
from dataclasses import asdict, dataclass
from typing import Any, Iterator

from aiohttp import web

MALFORMED_BODY = '{"id": "chatcmpl-broken", "object": "chat.completion", "choices": [{"mess'


@dataclass(frozen=True)
class Fault:
    """What one hit gets. kind: ok | status | malformed | hang."""

    kind: str = "ok"
    status: int = 200
    delay_s: float = 0.0
    retry_after: float | None = None  # seconds, sent as the Retry-After header
    echo_auth: bool = False  # error message repeats the Authorization header, as careless servers do


def ok(delay_s: float = 0.0) -> Fault:
    return Fault("ok", delay_s=delay_s)


def rate_limited(retry_after: float | None = 1.0) -> Fault:
    return Fault("status", status=429, retry_after=retry_after)


def server_error(status: int = 500) -> Fault:
    return Fault("status", status=status)


def status(code: int) -> Fault:
    return Fault("status", status=code)


def malformed() -> Fault:
    return Fault("malformed")


def hang() -> Fault:
    """Accept the request and never answer (until the server stops)."""
    return Fault("hang")


_ERROR_TYPES = {400: "invalid_request_error", 401: "authentication_error", 403: "permission_error",
                404: "not_found_error", 429: "rate_limit_exceeded", 500: "server_error", 503: "service_unavailable"}


class FaultServer:
    """Scriptable fake of `/v1/chat/completions`. Thread-safe to script and read from tests."""

    def __init__(self, latency_s: float = 0.0, model_version: str = "fault-model-2024-06-01",
                 host: str = "127.0.0.1", port: int = 0, record_bodies: bool = True):
        self.latency_s = latency_s  # default added latency for unscripted hits
        self.model_version = model_version
        self.record_bodies = record_bodies
        self._host, self._port = host, port
        self._lock = threading.Lock()
        self._scripts: dict[str, collections.deque[Fault]] = {}
        self.hits: collections.Counter[str] = collections.Counter()
        self._total = 0  # sum of hits, kept as they come: polled often on long runs
        self.bodies: list[dict[str, Any]] = []
        self.headers: list[dict[str, str]] = []  # names lowercased
        self.in_flight = 0
        self.max_in_flight = 0
        self.first_hit_at: float | None = None  # time.monotonic(): the span from the first request
        self.last_answer_at: float | None = None  # to the last answer, the same clock for every client
        self._loop: asyncio.AbstractEventLoop | None = None
        self._runner: web.AppRunner | None = None
        self._stopping: asyncio.Event | None = None
        self._thread: threading.Thread | None = None
        self.port: int | None = None
        self._answers: dict[tuple[str | None, str], dict[str, Any]] = {}

    # ---- scripting and inspection --------------------------------------------------------------
    @property
    def url(self) -> str:
        """Base URL to pass as `api_base` (OpenAI style, ending in /v1)."""
        return f"http://{self._host}:{self.port}/v1"

    def script(self, item_id: str, *faults: Fault) -> None:
        """Queue what the next hits of `item_id` get, in order; later hits get a normal answer."""
        with self._lock:
            self._scripts.setdefault(item_id, collections.deque()).extend(faults)

    def answer_with_calls(self, item_id: str, calls: list[dict[str, Any]], text: str | None = None,
                          model: str | None = None) -> None:
        """Answer `item_id` (from `model` only, when given) with these calls, each `{name, arguments}`
        (arguments an object, or a string sent verbatim, e.g. broken JSON)."""
        with self._lock:
            self._answers[(model, item_id)] = {"calls": calls, "text": text}

    def answer_with_text(self, item_id: str, text: str, model: str | None = None) -> None:
        with self._lock:
            self._answers[(model, item_id)] = {"calls": [], "text": text}

    def _scripted(self, body: dict[str, Any], item_id: str) -> dict[str, Any] | None:
        with self._lock:
            return self._answers.get((body.get("model"), item_id)) or self._answers.get((None, item_id))

    def always(self, item_id: str, fault: Fault, times: int = 1000) -> None:
        self.script(item_id, *([fault] * times))

    def reset(self) -> None:
        with self._lock:
            self._scripts.clear()
            self.hits.clear()
            self._total = 0
            self.bodies.clear()
            self.headers.clear()
            self.max_in_flight = self.in_flight
            self.first_hit_at = self.last_answer_at = None

    def total_hits(self) -> int:
        return self._total

    def stats(self) -> dict[str, Any]:
        return {"hits": dict(self.hits), "total_hits": self.total_hits(), "max_in_flight": self.max_in_flight,
                "in_flight": self.in_flight, "span_s": self.span_s()}

    def span_s(self) -> float | None:
        """Seconds from the first request's arrival to the last answer sent (None: no hit yet)."""
        if self.first_hit_at is None or self.last_answer_at is None:
            return None
        return self.last_answer_at - self.first_hit_at

    def _next_fault(self, item_id: str) -> Fault:
        with self._lock:
            self.hits[item_id] += 1
            self._total += 1
            queue = self._scripts.get(item_id)
            if queue:
                return queue.popleft()
        return Fault("ok", delay_s=self.latency_s)

    # ---- HTTP handlers ---------------------------------------------------------------------------
    async def _chat(self, request: web.Request) -> web.StreamResponse:
        if self.first_hit_at is None:
            self.first_hit_at = time.monotonic()
        self.in_flight += 1
        self.max_in_flight = max(self.max_in_flight, self.in_flight)
        try:
            body = await request.json()
            text = str(body["prompt"]) if "prompt" in body else _last_user_text(body.get("messages", []))
            item_id = request.headers.get("X-Item-Id", text)
            if self.record_bodies:
                with self._lock:
                    self.bodies.append(body)
                    self.headers.append({k.lower(): v for k, v in request.headers.items()})
            fault = self._next_fault(item_id)
            if fault.delay_s:
                await asyncio.sleep(fault.delay_s)
            if fault.kind == "hang":
                assert self._stopping is not None
                await self._stopping.wait()
                raise web.HTTPServiceUnavailable()
            if fault.kind == "malformed":
                return web.Response(text=MALFORMED_BODY, content_type="application/json")
            if fault.kind == "status" and fault.status >= 400:
                headers = {} if fault.retry_after is None else {"Retry-After": f"{fault.retry_after:g}"}
                message = f"injected {fault.status} for {item_id}"
                if fault.echo_auth:
                    message += f" (credentials sent: {request.headers.get('Authorization', '')})"
                error = {"error": {"message": message,
                                   "type": _ERROR_TYPES.get(fault.status, "error"), "code": str(fault.status)}}
                return web.json_response(error, status=fault.status, headers=headers)
            if "prompt" in body:
                return web.json_response(self._text_completion(body, text))
            scripted = self._scripted(body, item_id)
            return web.json_response(self._completion(body, text) if scripted is None
                                     else self._scripted_completion(body, scripted))
        finally:
            self.in_flight -= 1
            self.last_answer_at = time.monotonic()

    @staticmethod
    def _reply(body: dict[str, Any], text: str) -> tuple[str, str]:
        """Echo the text, cut to max_tokens words (then finish_reason is 'length')."""
        words = f"echo: {text}".split()
        max_tokens = body.get("max_tokens") or body.get("max_completion_tokens")
        if max_tokens is not None and len(words) > int(max_tokens):
            return " ".join(words[: int(max_tokens)]), "length"
        return " ".join(words), "stop"

    def _text_completion(self, body: dict[str, Any], text: str) -> dict[str, Any]:
        reply, finish = self._reply(body, text)
        prompt_tokens, completion_tokens = len(text.split()), len(reply.split())
        return {
            "id": "cmpl-fault", "object": "text_completion", "created": int(time.time()), "model": self.model_version,
            "choices": [{"index": 0, "text": reply, "finish_reason": finish, "logprobs": None}],
            "usage": {"prompt_tokens": prompt_tokens, "completion_tokens": completion_tokens,
                      "total_tokens": prompt_tokens + completion_tokens},
        }

    def _scripted_completion(self, body: dict[str, Any], scripted: dict[str, Any]) -> dict[str, Any]:
        """The scripted answer: its text, and its calls when the request offers tools."""
        answer = FaultServer._completion(self, body, "")  # the envelope (id, usage), never a subclass's answer
        message: dict[str, Any] = {"role": "assistant", "content": scripted["text"]}
        calls = scripted["calls"] if body.get("tools") and body.get("tool_choice") != "none" else []
        if calls:
            message["tool_calls"] = [
                {"id": f"call_{n}", "type": "function", "function": {
                    "name": call["name"], "arguments": call["arguments"] if isinstance(call["arguments"], str)
                    else json.dumps(call["arguments"])}} for n, call in enumerate(calls)]
        answer["choices"] = [{"index": 0, "message": message, "finish_reason": "tool_calls" if calls else "stop"}]
        return answer

    def _completion(self, body: dict[str, Any], text: str) -> dict[str, Any]:
        reply, finish = self._reply(body, text)
        message: dict[str, Any] = {"role": "assistant", "content": reply}
        prompt_tokens = sum(len(str(m.get("content", "")).split()) for m in body.get("messages", []))
        completion_tokens = len(reply.split())
        return {
            "id": "chatcmpl-fault", "object": "chat.completion", "created": int(time.time()),
            "model": self.model_version,
            "choices": [{"index": 0, "message": message, "finish_reason": finish}],
            "usage": {"prompt_tokens": prompt_tokens, "completion_tokens": completion_tokens,
                      "total_tokens": prompt_tokens + completion_tokens},
        }

    async def _control_script(self, request: web.Request) -> web.Response:
        data = await request.json()
        if "latency_s" in data:
            self.latency_s = float(data["latency_s"])
        for item_id, faults in data.get("scripts", {}).items():
            self.script(item_id, *(Fault(**f) for f in faults))
        if data.get("reset"):
            self.reset()
        return web.json_response({"ok": True})

    async def _control_stats(self, request: web.Request) -> web.Response:
        if request.query.get("total"):  # cheap to poll on long runs: no per-item counts
            return web.json_response({"total_hits": self.total_hits(), "in_flight": self.in_flight,
                                      "span_s": self.span_s()})
        return web.json_response(self.stats())

    # ---- lifecycle -------------------------------------------------------------------------------
    def _app(self) -> web.Application:
        app = web.Application()
        app.router.add_post("/v1/chat/completions", self._chat)
        app.router.add_post("/chat/completions", self._chat)
        app.router.add_post("/v1/completions", self._chat)
        app.router.add_post("/completions", self._chat)
        app.router.add_post("/_control/script", self._control_script)
        app.router.add_get("/_control/stats", self._control_stats)
        return app

    async def _start_async(self) -> None:
        self._stopping = asyncio.Event()
        # handler_cancellation: a client that gives up frees its slot, so in_flight stays truthful.
        self._runner = web.AppRunner(self._app(), handler_cancellation=True, access_log=None, shutdown_timeout=0.5)
        await self._runner.setup()
        site = web.TCPSite(self._runner, self._host, self._port, backlog=1024)
        await site.start()
        self.port = self._runner.addresses[0][1]

    def start(self) -> "FaultServer":
        started = threading.Event()
        errors: list[BaseException] = []

        def serve() -> None:
            loop = asyncio.new_event_loop()
            self._loop = loop
            try:
                loop.run_until_complete(self._start_async())
            except BaseException as exc:  # surface bind errors to the caller
                errors.append(exc)
                started.set()
                loop.close()
                return
            started.set()
            loop.run_forever()
            loop.close()

        self._thread = threading.Thread(target=serve, name="fault-server", daemon=True)
        self._thread.start()
        started.wait(10)
        if errors:
            raise errors[0]
        return self

    def stop(self) -> None:
        loop = self._loop
        if loop is None or self._thread is None:
            return

        async def shutdown() -> None:
            assert self._stopping is not None and self._runner is not None
            self._stopping.set()
            await self._runner.cleanup()

        asyncio.run_coroutine_threadsafe(shutdown(), loop).result(10)
        loop.call_soon_threadsafe(loop.stop)
        self._thread.join(10)
        self._loop = self._thread = None

    def __enter__(self) -> "FaultServer":
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def _last_user_text(messages: list[dict[str, Any]]) -> str:
    for message in reversed(messages):
        if message.get("role") == "user":
            content = message.get("content", "")
            if isinstance(content, list):  # content parts
                return " ".join(str(p.get("text", "")) for p in content if isinstance(p, dict))
            return str(content)
    return ""


def fault_dict(fault: Fault) -> dict[str, Any]:
    """A Fault as JSON for the `/_control/script` endpoint."""
    return asdict(fault)


try:  # the fixture is only defined when pytest is importable (not needed by the standalone server)
    import pytest

    @pytest.fixture
    def fault_server() -> Iterator[FaultServer]:
        """A fresh fault server per test, stopped afterwards."""
        with FaultServer() as server:
            yield server
except ImportError:  # pragma: no cover
    pass


def main() -> None:
    parser = argparse.ArgumentParser(description="Run the fault server until killed; prints its base URL.")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--latency", type=float, default=0.0)
    parser.add_argument("--no-record", action="store_true", help="do not keep request bodies (long runs)")
    args = parser.parse_args()
    server = FaultServer(latency_s=args.latency, port=args.port, record_bodies=not args.no_record).start()
    print(server.url, flush=True)
    try:
        threading.Event().wait()
    except KeyboardInterrupt:
        server.stop()


if __name__ == "__main__":
    main()
