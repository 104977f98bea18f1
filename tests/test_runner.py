"""The runner with the fake model: caching, resume, errors, and what goes into the cache key."""
import pandas as pd
import pytest

from workbench.generation.calls import CallPolicy
from workbench.errors import InputError
from workbench.models import Request, Sampling, get_model
from workbench.hashing import request_key
from workbench.generation.runner import ModelSpec, build_requests, generate

FAST = CallPolicy(concurrency=4, timeout_s=5, max_attempts=2, backoff_base_s=0.01, backoff_max_s=0.02, budget_s=5)


def _items(n=6):
    frame = pd.DataFrame({
        "item_id": [f"i{k}" for k in range(n)],
        "input": [f"question {k}" for k in range(n)],
        "reference": [f"answer {k}" for k in range(n)],
        "task": ["support_reply" if k % 2 else "review_summary" for k in range(n)],
        "language": ["en"] * n,
    })
    frame.attrs["source"] = "memory"
    return frame


def test_generate_then_warm_rerun_makes_no_calls(store):
    items = _items()
    models = [ModelSpec(name="fake/a"), ModelSpec(name="fake/b", prompt="support_chat@v1")]
    frame, stats = generate(items, models, store, policy=FAST, progress=False)
    assert len(frame) == 12 and stats.calls_made == 12 and stats.cached == 0 and stats.errors == 0
    assert set(frame.columns) >= {"item_id", "model", "prompt_version", "sample_index", "response", "finish_reason",
                                  "prompt_tokens", "completion_tokens", "latency_s", "cost_usd", "error"}
    b = frame[frame.model == "fake/b"].set_index("item_id")
    assert "Summarise this product review" in b.loc["i0", "response"]  # the model's own prompt was used
    assert b.loc["i0", "prompt_version"] == "support_chat@v1"
    again, stats2 = generate(items, models, store, policy=FAST, progress=False)
    assert stats2.calls_made == 0 and stats2.cached == 12
    pd.testing.assert_series_equal(frame["response"], again["response"])


def test_failed_items_are_recorded_and_retried_next_run(store):
    items = _items(4)
    failing = ModelSpec(name="fake/a", options={"fail_items": ["i1"]})
    frame, stats = generate(items, [failing], store, policy=FAST, progress=False)
    row = frame.set_index("item_id").loc["i1"]
    assert stats.errors == 1 and pd.isna(row["response"]) and "injected failure" in row["error"]
    healed = ModelSpec(name="fake/a")  # same identity: options that only inject faults are not part of it
    frame2, stats2 = generate(items, [healed], store, policy=FAST, progress=False)
    assert stats2.calls_made == 1 and stats2.cached == 3 and stats2.errors == 0  # errors are never cached
    assert frame2.set_index("item_id").loc["i1", "response"].startswith("a: ")


def test_samples_share_a_key_when_greedy_and_differ_when_sampling(store):
    items = _items(2)
    _, greedy = generate(items, [ModelSpec(name="fake/a")], store, samples=3, policy=FAST, progress=False)
    assert greedy.calls_made == 2  # greedy output cannot differ between samples
    frame, sampled = generate(items, [ModelSpec(name="fake/a")], store, samples=3,
                              sampling=Sampling(temperature=0.7, seed=1), policy=FAST, progress=False)
    assert sampled.calls_made == 6 and frame.groupby("item_id")["response"].nunique().eq(3).all()


def test_cache_key_changes_with_what_changes_output():
    adapter = get_model("fake/a")
    base = Request(item_id="x", messages=({"role": "user", "content": "hi"},), sampling=Sampling())
    key = request_key(adapter.identity(), base.payload())
    variants = [
        request_key(get_model("fake/b").identity(), base.payload()),
        request_key(adapter.identity(), Request(item_id="x", messages=({"role": "user", "content": "hi!"},)).payload()),
        request_key(adapter.identity(), Request(item_id="x", messages=base.messages, sampling=Sampling(max_tokens=5)).payload()),
        request_key(adapter.identity(), Request(item_id="x", messages=base.messages, sampling=Sampling(stop=("\n",))).payload()),
        request_key(adapter.identity(), Request(item_id="x", messages=base.messages, sampling=Sampling(temperature=0.5)).payload()),
        request_key(adapter.identity(), Request(item_id="x", messages=base.messages, sampling=Sampling(temperature=0.5), sample_index=1).payload()),
    ]
    assert len({key, *variants}) == len(variants) + 1
    # the item id alone does not change the output: identical requests share one cached answer
    assert request_key(adapter.identity(), Request(item_id="y", messages=base.messages).payload()) == key


def test_timeout_and_concurrency_do_not_change_keys(store):
    items = _items(3)
    generate(items, [ModelSpec(name="fake/a")], store, policy=FAST, progress=False)
    other = CallPolicy(concurrency=1, timeout_s=99, max_attempts=1)
    _, stats = generate(items, [ModelSpec(name="fake/a")], store, policy=other, progress=False)
    assert stats.calls_made == 0


def test_missing_prompt_variable_fails_before_any_call(store):
    items = _items(3).drop(columns=["task"])
    with pytest.raises(InputError) as err:
        generate(items, [ModelSpec(name="fake/a", prompt="support_chat@v1")], store, policy=FAST, progress=False)
    assert "task" in str(err.value) and "i0" in str(err.value)
    assert store.execute("SELECT count(*) FROM runs").fetchone()[0] == 0


def test_unknown_model_option_is_an_error(store):
    with pytest.raises(InputError, match="bogus"):
        generate(_items(1), [ModelSpec(name="fake/a", options={"bogus": 1})], store, policy=FAST, progress=False)


# ---- per-model timeouts and endpoints ------------------------------------------------------------------

from workbench.models.fake_adapter import FakeAdapter  # noqa: E402


class TimedAdapter(FakeAdapter):
    """A fake local model (registered as `timed/` below): remembers the per-call limit of each call."""

    provider = "timed"
    default_timeout_s = 600.0
    seen: list[float] = []

    async def generate(self, requests, timeout_s):
        self.seen.append(timeout_s)
        return await super().generate(requests, timeout_s)


def test_a_spec_timeout_reaches_the_adapter_with_a_budget_that_allows_a_retry(store, monkeypatch):
    from workbench import models

    monkeypatch.setitem(models._PROVIDERS, "timed", "tests.test_runner:TimedAdapter")
    TimedAdapter.seen.clear()
    spec = ModelSpec(name="timed/local", timeout_s=models.default_timeout_s("timed/local"))
    assert spec.timeout_s == 600.0
    policy = spec.policy(FAST)
    assert (policy.timeout_s, policy.budget_s, policy.concurrency) == (600.0, 1200.0, FAST.concurrency)
    generate(_items(2), [spec, ModelSpec(name="fake/api")], store, policy=FAST, progress=False)
    assert TimedAdapter.seen == [600.0, 600.0]  # its two calls; the other model kept the policy's own limit
    assert ModelSpec(name="fake/api").policy(FAST) is FAST


def test_default_timeouts_by_model_kind():
    from workbench.models import default_timeout_s

    assert default_timeout_s("litellm/openai/gpt-4o-mini") == default_timeout_s("openai/m") == 60.0
    assert default_timeout_s("hf/smollm2-135m-instruct") == default_timeout_s("vllm/any") == 600.0
    assert default_timeout_s("replay/x.jsonl") == default_timeout_s("fake/x") == 60.0


def test_the_global_api_base_goes_only_to_api_models_without_their_own_endpoint():
    assert ModelSpec.with_endpoint("openai/m", None, "http://g/v1").options == {"api_base": "http://g/v1"}
    assert ModelSpec.with_endpoint("hf/smollm2-135m-instruct", None, "http://g/v1").options == {}
    own = ModelSpec.with_endpoint("openai/m", None, "http://g/v1", options={"api_base": "http://own/v1"})
    assert own.options == {"api_base": "http://own/v1"}
    routed = {"deployments": [{"api_base": "http://r/v1"}]}
    assert ModelSpec.with_endpoint("litellm/openai/m", None, "http://g/v1", options=routed).options == routed
    priced = {"input_cost_per_token": 1e-6, "output_cost_per_token": 1e-6}
    assert ModelSpec.with_endpoint("openai/m", None, "http://g/v1", options=priced).options == {
        "api_base": "http://g/v1", **priced}


# ---- a large run through the local server ----------------------------------------------------------
def _server_process():
    """tests/fault_server.py in its own process (its memory and GIL are not the client's)."""
    import subprocess
    import sys
    from pathlib import Path

    script = Path(__file__).resolve().parent / "fault_server.py"
    proc = subprocess.Popen([sys.executable, str(script), "--no-record"], stdout=subprocess.PIPE, text=True)
    url = proc.stdout.readline().strip()
    assert url.startswith("http"), "fault server did not start"
    return proc, url


def _server_hits(url: str) -> int:
    import json
    import urllib.request

    with urllib.request.urlopen(url.removesuffix("/v1") + "/_control/stats?total=1", timeout=10) as resp:
        return int(json.load(resp)["total_hits"])


class _MemoryProbe:
    """A phase reporter recording Python's traced memory (tracemalloc) each time a phase's count of
    finished calls crosses a tenth of its total."""

    def __init__(self) -> None:
        self.samples: list[tuple[str, int, int]] = []  # (phase, calls done, bytes)

    def __call__(self, desc: str, total: int) -> "_MemoryProbe._Phase":
        return self._Phase(self, desc, total)

    class _Phase:
        def __init__(self, probe: "_MemoryProbe", desc: str, total: int) -> None:
            self.probe, self.desc, self.step, self.next = probe, desc, max(1, total // 10), 0

        def update(self, n_done: int, n_errors: int = 0, cost_usd: float = 0.0) -> None:
            import tracemalloc

            if n_done >= self.next:
                self.probe.samples.append((self.desc, n_done, tracemalloc.get_traced_memory()[0]))
                self.next = n_done + self.step

        def close(self) -> None:
            pass


@pytest.mark.slow
def test_a_large_run_keeps_memory_flat_and_its_warm_rerun_makes_no_call(tmp_path, api_key):
    """3,000 items x 2 models through a real OpenAI-compatible server: the memory the run holds does
    not grow with the calls made (answers go to the store on disk), and the same run again is served
    from the store without a single request."""
    import tracemalloc

    from workbench.store import Store

    n = 3000
    items = pd.DataFrame({"item_id": [f"item-{k:05d}" for k in range(n)],
                          "input": [f"question {k}: where is my order and when will it ship" for k in range(n)]})
    proc, url = _server_process()
    try:
        models = [ModelSpec.with_endpoint("openai/scale-base", None, url),
                  ModelSpec.with_endpoint("openai/scale-cand", None, url)]
        policy = CallPolicy(concurrency=16, timeout_s=30)
        probe = _MemoryProbe()
        with Store(tmp_path / "store.db") as store:
            tracemalloc.start()
            try:
                frame, stats = generate(items, models, store, policy=policy, progress=probe, responses=False)
            finally:
                tracemalloc.stop()
            assert stats.calls_made == 2 * n and stats.errors == 0 and frame.empty
            assert _server_hits(url) == 2 * n
            assert store.execute("SELECT count(*) FROM responses").fetchone()[0] == 2 * n
            # From a tenth of the first model's calls to the last call of the second: 5,700 calls.
            first = next(b for desc, done, b in probe.samples if done >= n // 10)
            last = probe.samples[-1][2]
            assert probe.samples[-1][1] == n and len({desc for desc, *_ in probe.samples}) == 2
            growth = last - first
            assert growth < 1 * 2**20, f"memory grew {growth / 2**20:.2f} MiB over {2 * n - n // 10} calls"

            again, warm = generate(items, models, store, policy=policy, progress=False)
            assert warm.calls_made == 0 and warm.cached == 2 * n and _server_hits(url) == 2 * n
            assert len(again) == 2 * n and again["response"].str.startswith("echo: question").all()
    finally:
        proc.terminate()
        proc.wait(10)


def test_models_with_one_prompt_share_their_rendered_requests():
    """A large run holds each rendered request once, however many models answer it."""
    from workbench.generation.runner import preflight

    models = [ModelSpec(name="fake/a"), ModelSpec(name="fake/b"), ModelSpec(name="fake/c", prompt="support_chat@v1")]
    prepared = preflight(_items(3), models, sampling=Sampling())
    a, b, c = ([call.request for call in planned] for *_, planned in prepared)
    assert all(x is y for x, y in zip(a, b)) and not any(x is z for x, z in zip(a, c))
    assert [call.cache_key for call in prepared[0][3]] != [call.cache_key for call in prepared[1][3]]


def test_payload_json_of_every_request_shape_is_its_canonical_json():
    """`payload_jsons` builds the JSON the request keys hash without serialising the shared part per
    request: byte for byte `canonical_json(request.payload())`, whatever the request carries."""
    from workbench.generation.runner import payload_jsons
    from workbench.hashing import canonical_json
    from workbench.models import Request, Sampling

    greedy, sampled = Sampling(), Sampling(temperature=0.7, seed=3, stop=("\n", "END"), max_tokens=12)
    tool = {"type": "function", "function": {"name": "f", "parameters": {"type": "object"}}}
    requests = [Request("a", ({"role": "user", "content": 'é "q" \u2028 日本'},)),
                Request("b", ({"role": "system", "content": "s"}, {"role": "user", "content": "u"}), sampling=sampled,
                        sample_index=2),
                Request("b", ({"role": "user", "content": "u"},), sampling=sampled, sample_index=3),
                Request("c", (), prompt="Q: x\nA:", sampling=sampled),
                Request("d", ({"role": "user", "content": "t"},), tools=(tool,), tool_choice="auto"),
                Request("e", ({"role": "user", "content": "j"},), response_format={"type": "json_object"}),
                Request("f", ({"role": "user", "content": "g"},), sampling=greedy, sample_index=4)]
    assert payload_jsons(requests) == [canonical_json(r.payload()) for r in requests]
