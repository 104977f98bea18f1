"""The hf/ adapter: options, identity, and real generation with both bundled models on CPU. The defaults
that depend on the machine (device, dtype, rows at once) are checked against the machine; the CUDA
path itself runs in tests/models/test_gpu.py."""
from __future__ import annotations

import asyncio
import logging
import os
import subprocess
import sys
from pathlib import Path

import pytest

from workbench.errors import InputError, ModelCallError
from workbench.models import Request, Response, Sampling, get_model
from workbench.models.hf_adapter import NVIDIA_DRIVER, first_stop, sample_seed
from workbench.models.local_chat import render_plain

SMOL = "hf/smollm2-135m-instruct"
GEMMA = "hf/gemma3-270m"
FEW_SHOT = ("Q: What is the capital of Italy?\nA: Rome.\n\n"
            "Q: What is the capital of Japan?\nA: Tokyo.\n\n"
            "Q: What is the capital of France?\nA:")


def chat(item_id: str, text: str, **sampling) -> Request:
    return Request(item_id, messages=({"role": "user", "content": text},), sampling=Sampling(**sampling))


def run(adapter, requests, timeout_s: float = 600.0):
    return asyncio.run(adapter.generate(requests, timeout_s))


def answers(outcomes) -> list[Response]:
    for outcome in outcomes:
        assert isinstance(outcome, Response), outcome
    return outcomes


# --- pure helpers and options (fast) --------------------------------------------------------------

def test_render_plain():
    assert render_plain([{"role": "user", "content": "Q: 2+2?\nA:"}]) == "Q: 2+2?\nA:"
    assert render_plain([{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hi"}]) \
        == "Be brief.\n\nHi"
    assert render_plain([{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Hello"},
                         {"role": "user", "content": "Bye"}]) == "User: Hi\n\nAssistant: Hello\n\nUser: Bye\n\nAssistant:"


def test_stop_in_tail_finds_a_stop_spread_over_tokens_in_the_generated_tail_only():
    from workbench.models.hf_adapter import stop_in_tail

    class CharTokenizer:  # one character per token; 0 decodes to nothing, like a skipped special token
        def decode(self, ids, skip_special_tokens=True):
            return "".join("" if i == 0 else chr(i) for i in ids)

    row = "a long answer, then END."
    tokens = [ord(c) if c != "," else 0 for c in row]
    seen = [stop_in_tail(CharTokenizer(), tokens[:step], ("END",)) for step in range(1, len(tokens) + 1)]
    at = row.index("END") + 3
    assert seen == [False] * (at - 1) + [True] * (len(tokens) - at + 1)
    assert not stop_in_tail(CharTokenizer(), tokens, ("",)) and not stop_in_tail(CharTokenizer(), tokens, ())
    long_ago = [ord(c) for c in "END" + " then a lot more text without the stop string"]
    assert not stop_in_tail(CharTokenizer(), long_ago, ("END",))  # only the tail is read


def test_first_stop_takes_the_earliest():
    assert first_stop("Paris.\nQ: next", ("Q:", "\n")) == 6
    assert first_stop("Paris.", ("\n",)) is None
    assert first_stop("Paris.", ("",)) is None


def test_sample_seed_depends_on_seed_and_index_only():
    a = Request("x", prompt="p", sampling=Sampling(temperature=1, seed=3), sample_index=0)
    b = Request("y", prompt="other", sampling=Sampling(temperature=0.5, seed=3), sample_index=0)
    c = Request("x", prompt="p", sampling=Sampling(temperature=1, seed=3), sample_index=1)
    assert sample_seed(a) == sample_seed(b) != sample_seed(c)
    assert 0 <= sample_seed(a) < 2**63


@pytest.mark.parametrize("options, message", [
    ({"temperature": 0.2}, "temperature"),
    ({"dtype": "int3"}, "unknown dtype"),
    ({"batch_size": 0}, "batch_size"),
    ({"scheduling": "dynamic"}, "scheduling"),
])
def test_bad_options_are_errors(options, message):
    with pytest.raises(InputError, match=message):
        get_model(SMOL, **options)


def test_bad_spec_is_an_error_at_construction(tmp_path):
    with pytest.raises(InputError, match="no such folder or file"):
        get_model(f"hf/{tmp_path}/absent")


def test_device_cuda_is_taken_where_there_is_one_and_an_error_elsewhere():
    import torch

    if torch.cuda.is_available():  # the expectation follows the machine (tests/models/test_gpu.py runs it)
        assert get_model(SMOL, device="cuda").device.startswith("cuda")
        return
    with pytest.raises(InputError, match="no CUDA GPU"):
        get_model(SMOL, device="cuda")


@pytest.mark.skipif(not sys.platform.startswith("linux") or NVIDIA_DRIVER.exists(),
                    reason="here the NVIDIA driver is loaded (or not Linux): torch must be asked")
def test_the_default_device_is_the_cpu_without_importing_torch_where_no_cuda_driver_is_loaded():
    """A warm report builds its hf/ adapters to find their cache keys and needs torch for nothing
    else: with no NVIDIA driver the device is the CPU, as torch would say, without its import."""
    code = ("import sys; from workbench.models.hf_adapter import _pick_device; "
            "print(_pick_device(None), 'torch' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                         env={**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2])})
    assert out.stdout.split() == ["cpu", "False"]
    import torch

    assert not torch.cuda.is_available()  # what torch says here too


def test_identity_is_content_dtype_and_spec():
    adapter = get_model(SMOL)
    identity = adapter.identity()
    assert identity["provider"] == "hf" and identity["model"] == "smollm2-135m-instruct"
    assert identity["dtype"] == adapter.dtype
    assert get_model(SMOL, device="cpu").identity()["dtype"] == "float32"
    assert len(identity["weights_sha256"]) == 64
    assert get_model(SMOL, dtype="bf16").identity()["dtype"] == "bfloat16"
    by_path = get_model(f"hf/{adapter.ref.gguf}")
    assert by_path.identity()["weights_sha256"] == identity["weights_sha256"]
    # the default device is CUDA where there is one (32 rows at once), else the CPU (16 rows)
    import torch

    on_gpu = torch.cuda.is_available()
    assert adapter.device.startswith("cuda") == on_gpu
    slots = 32 if on_gpu else 16
    assert adapter.slots == slots and adapter.max_batch == 4 * slots and adapter.concurrent is False
    assert get_model(SMOL, device="cpu").slots == 16
    assert get_model(SMOL, batch_size=3).slots == 3
    assert get_model(SMOL, batch_size=3, scheduling="static").identity() == identity  # never changes an answer


# --- real models (slow) ----------------------------------------------------------------------------

@pytest.fixture(scope="module")
def smol():
    adapter = get_model(SMOL, device="cpu")  # fp32 on CPU: the batching claims below are about it
    asyncio.run(adapter.prepare())
    print(f"\n{SMOL} loaded in {adapter.load_seconds:.1f} s (threads: {os.environ.get('OMP_NUM_THREADS', 'default')})")
    yield adapter
    asyncio.run(adapter.aclose())
    assert adapter.load_seconds is None


@pytest.mark.slow
def test_smollm2_answers_a_chat_question(smol):
    [answer] = answers(run(smol, [chat("q", "What is the capital of France?", max_tokens=24)]))
    assert "Paris" in answer.text
    assert answer.finish_reason == "stop" and answer.cost_usd is None
    assert answer.prompt_tokens > 10 and 0 < answer.completion_tokens <= 24 and answer.latency_s > 0
    assert smol.ref.weights_hash[:12] in answer.model_version


@pytest.mark.slow
def test_batched_greedy_matches_one_by_one(smol):
    """Left padding with an attention mask must not change greedy output. In fp32 the only
    difference between a batch and a single row is float rounding (other matmul shapes); a
    near-tie between the two best tokens could flip one argmax, after which the texts diverge.
    Tolerance: at most one of the six may diverge, and only after its first 10 characters.
    Measured here: all six identical."""
    questions = ["Hi!", "What is 2 + 2?", "Name three primary colours.",
                 "Explain in one sentence why the sky is blue during the day.",
                 "Write a short, friendly reply to a customer whose parcel arrived two days late and "
                 "slightly damaged, apologising and offering a discount on the next order.",
                 "Translate 'good morning' to French."]
    requests = [chat(f"q{i}", q, max_tokens=16) for i, q in enumerate(questions)]
    batched = answers(run(smol, requests))
    single = [answers(run(smol, [r]))[0] for r in requests]
    mismatches = [(r.item_id, s.text, b.text) for r, s, b in zip(requests, single, batched) if s.text != b.text]
    for item_id, one, many in mismatches:
        print(f"\nMISMATCH {item_id}:\n  one-by-one: {one!r}\n  batched:    {many!r}")
    assert len(mismatches) <= 1, mismatches
    for _, one, many in mismatches:
        assert one[:10] == many[:10]
    if not mismatches:
        assert [s.completion_tokens for s in single] == [b.completion_tokens for b in batched]
    assert [s.prompt_tokens for s in single] == [b.prompt_tokens for b in batched]


def sharing(adapter, **options):
    """Another adapter on the same loaded model: decoding options do not load it again."""
    other = get_model(SMOL, device="cpu", **options)
    asyncio.run(other.prepare())
    assert other._loaded is adapter._loaded
    return other


@pytest.mark.slow
def test_continuous_batching_matches_one_by_one(smol):
    """More requests than rows, with different prompt lengths, max_tokens and a stop string, in
    one call: rows finish at different steps and waiting requests take their slots (prefilled on
    their own, then merged into the running batch's KV cache, left-padded). Greedy outputs must
    be exactly the one-by-one outputs; the static scheduler gives the same ones."""
    questions = ["Hi!", "What is 2 + 2?", "Name three primary colours.", "Write a haiku about the sea.",
                 "Explain in one sentence why the sky is blue during the day.", "What is 12 times 7?",
                 "Give me three tips for better sleep.", "Translate 'good morning' to French.",
                 "Write a short, friendly reply to a customer whose parcel arrived two days late.",
                 "Is a tomato a fruit or a vegetable?"]
    requests = [chat(f"q{i}", q, max_tokens=6 + 3 * (i % 4), stop=("\n",) if i % 3 == 0 else ())
                for i, q in enumerate(questions)]
    narrow, static = sharing(smol, batch_size=3), sharing(smol, batch_size=3, scheduling="static")
    continuous = answers(run(narrow, requests))
    in_static = answers(run(static, requests))
    single = [answers(run(smol, [r]))[0] for r in requests]

    def seen(outcomes):
        return [(o.text, o.finish_reason, o.completion_tokens, o.prompt_tokens) for o in outcomes]

    assert seen(continuous) == seen(single)
    assert seen(in_static) == seen(single)
    assert {o.finish_reason for o in single} == {"stop", "length"}
    print(f"\ncontinuous: {dict(narrow.stats)}; static: {dict(static.stats)}")
    assert narrow.stats["joined_rows"] >= 3 and narrow.stats["prefilled_rows"] == len(requests)
    assert static.stats["joined_rows"] == 0
    assert narrow.stats["steps"] < static.stats["steps"]  # fewer, fuller steps


@pytest.mark.slow
def test_sampling_is_reproducible_per_request_whatever_the_batch(smol):
    def sample(index: int) -> Request:
        return Request("s", messages=({"role": "user", "content": "Tell me a story."},),
                       sampling=Sampling(temperature=1.0, top_p=0.9, seed=7, max_tokens=12), sample_index=index)

    alone = answers(run(smol, [sample(0)]))[0].text
    together = answers(run(smol, [chat("g", "Hello", max_tokens=12), sample(1), sample(0)]))
    assert together[2].text == alone
    assert together[1].text != alone  # another sample index is another draw


@pytest.mark.slow
def test_stop_string_and_length_limits(smol):
    stopped, cut = answers(run(smol, [chat("poem", "Write a four-line poem about the sea.", max_tokens=40,
                                           stop=("\n",)),
                                      chat("long", "Describe the history of Rome.", max_tokens=5)]))
    assert stopped.text and "\n" not in stopped.text and stopped.finish_reason == "stop"
    assert stopped.completion_tokens < 40
    assert cut.finish_reason == "length" and cut.completion_tokens == 5


@pytest.mark.slow
def test_deadline_and_input_limits_fail_per_item(smol):
    [late] = run(smol, [chat("late", "Describe the history of Rome.", max_tokens=50)], timeout_s=0)
    assert isinstance(late, ModelCallError) and late.kind == "timeout"
    # A row that finished keeps its answer when the call's time runs out for the others.
    quick, endless = run(smol, [chat("quick", "Hi", max_tokens=1),
                                chat("endless", "Describe the history of Rome in detail.", max_tokens=2000)],
                         timeout_s=5)
    assert isinstance(quick, Response) and quick.completion_tokens == 1
    assert isinstance(endless, ModelCallError) and endless.kind == "timeout" and "of 2000 tokens" in str(endless)
    limited = sharing(smol, max_input_tokens=20)
    long, short = run(limited, [chat("long", "word " * 50, max_tokens=3), Request("short", prompt="Hi", sampling=Sampling(max_tokens=3))])
    assert isinstance(long, ModelCallError) and long.kind == "bad_request" and "max_input_tokens=20" in str(long)
    assert isinstance(short, Response)


@pytest.mark.slow
def test_event_loop_stays_responsive_while_generating(smol):
    async def main() -> int:
        ticks = 0

        async def ticker():
            nonlocal ticks
            while True:
                await asyncio.sleep(0.01)
                ticks += 1

        task = asyncio.create_task(ticker())
        await smol.generate([chat("q", "Count from one to ten.", max_tokens=8)], 600)
        task.cancel()
        return ticks

    assert asyncio.run(main()) > 5


@pytest.mark.slow
def test_gemma_base_model_answers_a_few_shot_prompt_and_stops(caplog):
    gemma = get_model(GEMMA, batch_size=2)
    try:
        with caplog.at_level(logging.WARNING, logger="workbench.models.hf_adapter"):
            completion, as_chat, again = answers(run(gemma, [
                Request("fs", prompt=FEW_SHOT, sampling=Sampling(max_tokens=20, stop=("\n",))),
                chat("c", "What is the capital of France?", max_tokens=6),
                Request("fs2", prompt=FEW_SHOT, sampling=Sampling(max_tokens=20, stop=("\n",)))]))
        # Gemma 3's cache has sliding-window layers: no row joins a running batch; the third
        # request waits for an empty batch, and answers like the first.
        assert gemma.stats["joined_rows"] == 0 and gemma.stats["prefilled_rows"] == 3
        assert again.text == completion.text
        print(f"\n{GEMMA} loaded in {gemma.load_seconds:.1f} s; few-shot answer {completion.text!r}")
        assert "Paris" in completion.text and "\n" not in completion.text
        assert completion.finish_reason == "stop" and completion.completion_tokens < 20
        assert as_chat.text  # no chat template: the message went as plain text, and we said so
        assert "no chat template" in caplog.text
    finally:
        asyncio.run(gemma.aclose())
