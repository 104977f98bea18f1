"""`hf/<folder | .gguf | bundled name>`: a local transformers model, batched, offline.

The model loads lazily on the first `generate` (or `prepare`), from disk only, and stays loaded
until `aclose`. Requests are batched with left padding; greedy decoding when temperature is 0.
Sampling draws each request's tokens from its own seeded generator (Gumbel-max, exact for
temperature and top-p), so a sample is reproducible from (seed, sample_index) whatever else
shares its batch. Generation runs in a worker thread and stops early at a deadline or when the
awaiting task is cancelled, so a timed-out batch does not keep the CPU busy.
"""
from __future__ import annotations

import asyncio
import functools
import gc
import hashlib
import logging
import threading
import time
from dataclasses import dataclass
from types import SimpleNamespace
from typing import Any, Sequence

from pydantic import BaseModel, ConfigDict, Field, field_validator

from workbench.errors import InputError, ModelCallError
from workbench.models.base import Adapter, Outcome, Request, Response
from workbench.models.local_models import LocalModelSource, locate_local_model, resolve_local_model

log = logging.getLogger(__name__)

_DTYPES = {"float32": "float32", "fp32": "float32", "float": "float32", "bfloat16": "bfloat16", "bf16": "bfloat16",
           "float16": "float16", "fp16": "float16", "half": "float16"}


class HFOptions(BaseModel):
    model_config = ConfigDict(extra="forbid")

    device: str | None = None  # None: cuda when available, else cpu
    dtype: str | None = None  # None: bfloat16 on GPU, float32 on CPU (faster batched there, and exact)
    batch_size: int = Field(8, ge=1, le=1024)
    max_input_tokens: int | None = Field(None, ge=1)  # longer prompts fail as bad_request

    @field_validator("dtype")
    @classmethod
    def _known_dtype(cls, value: str | None) -> str | None:
        if value is None or value == "auto":
            return None
        if value.lower() not in _DTYPES:
            raise ValueError(f"unknown dtype '{value}' (use float32, bfloat16 or float16)")
        return _DTYPES[value.lower()]


@dataclass
class _Loaded:
    source: LocalModelSource
    tokenizer: Any
    model: Any
    eos_ids: frozenset[int]
    pad_id: int
    max_positions: int | None
    load_s: float


@dataclass
class _Prepared:
    index: int
    request: Request
    ids: list[int]


class HFAdapter(Adapter):
    """Local transformers model. `max_batch` is the batch size; one batch runs at a time."""

    provider = "hf"
    options_model = HFOptions
    concurrent = False

    def __init__(self, model: str, options: HFOptions):
        super().__init__(model, options)
        self.ref = locate_local_model(model)  # bad specs fail here, before any call is planned
        self.max_batch = options.batch_size
        self.device = _pick_device(options.device)
        self.dtype = options.dtype or _default_dtype(self.device)
        self._loaded: _Loaded | None = None
        self._lock = threading.Lock()  # one load, one batch at a time, whatever the caller does
        self._warned_plain = False

    def identity(self) -> dict[str, Any]:
        # The weights' content (not their path) and the dtype change the output; the device and
        # batch size only add noise at the level of float rounding.
        return {"provider": self.provider, "model": self.model, "weights_sha256": self.ref.weights_hash,
                "dtype": self.dtype}

    @property
    def load_seconds(self) -> float | None:
        return self._loaded.load_s if self._loaded else None

    async def prepare(self) -> None:
        """Convert (first time only) and load the model now, outside any call's timeout."""
        await asyncio.to_thread(self._load_locked)

    async def generate(self, requests: Sequence[Request], timeout_s: float) -> list[Outcome]:
        cancel = threading.Event()
        try:
            return await asyncio.to_thread(self._generate_sync, list(requests), timeout_s, cancel)
        except asyncio.CancelledError:
            cancel.set()  # the worker thread stops at its next token
            raise

    async def aclose(self) -> None:
        await asyncio.to_thread(self._unload)

    # --- loading ------------------------------------------------------------------------------

    def _load_locked(self) -> _Loaded:
        with self._lock:
            return self._ensure_loaded()

    def _ensure_loaded(self) -> _Loaded:
        if self._loaded is not None:
            return self._loaded
        import torch
        from transformers import AutoModelForCausalLM, AutoTokenizer

        start = time.perf_counter()
        source = resolve_local_model(self.ref)
        tokenizer = AutoTokenizer.from_pretrained(str(source.path), local_files_only=True)
        tokenizer.padding_side = "left"
        model = AutoModelForCausalLM.from_pretrained(str(source.path), local_files_only=True,
                                                     dtype=getattr(torch, self.dtype))
        model.to(self.device).eval()
        eos = model.generation_config.eos_token_id
        eos_ids = frozenset([eos] if isinstance(eos, int) else (eos or []))
        if tokenizer.eos_token_id is not None:
            eos_ids = eos_ids | {tokenizer.eos_token_id}
        if tokenizer.pad_token_id is None:
            if not eos_ids:
                raise InputError(f"model '{self.name}': tokenizer has neither a pad nor an eos token to pad with")
            tokenizer.pad_token_id = min(eos_ids)
        self._loaded = _Loaded(source, tokenizer, model, eos_ids, int(tokenizer.pad_token_id),
                               getattr(model.config, "max_position_embeddings", None), time.perf_counter() - start)
        log.info("loaded %s from %s in %.1f s (%s, %s)", self.name, source.path, self._loaded.load_s,
                 self.device, self.dtype)
        return self._loaded

    def _unload(self) -> None:
        with self._lock:
            self._loaded = None
            gc.collect()
            if self.device.startswith("cuda"):
                import torch

                torch.cuda.empty_cache()

    # --- generation ---------------------------------------------------------------------------

    def _generate_sync(self, requests: list[Request], timeout_s: float, cancel: threading.Event) -> list[Outcome]:
        with self._lock:
            try:
                loaded = self._ensure_loaded()
            except InputError as exc:
                return [ModelCallError("unavailable", str(exc))] * len(requests)
            except Exception as exc:  # a broken folder or out of memory: every item fails the same way
                return [ModelCallError("unavailable", f"could not load {self.name}: {type(exc).__name__}: {exc}")] \
                    * len(requests)
            deadline = time.monotonic() + timeout_s  # loading does not count against the batch
            outcomes: list[Outcome | None] = [None] * len(requests)
            groups: dict[tuple[int, tuple[str, ...]], list[_Prepared]] = {}
            for index, request in enumerate(requests):
                prepared = self._prepare(loaded, index, request)
                if isinstance(prepared, ModelCallError):
                    outcomes[index] = prepared
                else:
                    groups.setdefault((request.sampling.max_tokens, request.sampling.stop), []).append(prepared)
            for items in groups.values():
                items.sort(key=lambda p: len(p.ids))  # similar lengths together: less padding
                for start in range(0, len(items), self.max_batch):
                    chunk = items[start:start + self.max_batch]
                    try:
                        results = self._run_batch(loaded, chunk, deadline, timeout_s, cancel)
                    except Exception as exc:
                        results = [ModelCallError("unavailable", f"{self.name} failed: {type(exc).__name__}: {exc}")] \
                            * len(chunk)
                    for item, result in zip(chunk, results):
                        outcomes[item.index] = result
            return [o if o is not None else ModelCallError("bad_output", "no outcome") for o in outcomes]

    def _prepare(self, loaded: _Loaded, index: int, request: Request) -> _Prepared | ModelCallError:
        """Render and tokenize one request; a request the model cannot take fails alone."""
        tokenizer = loaded.tokenizer
        if request.prompt is not None:
            ids = tokenizer(request.prompt, add_special_tokens=True)["input_ids"]
        elif not request.messages:
            return ModelCallError("bad_request", f"request {request.item_id} has neither messages nor a prompt")
        elif loaded.source.chat_template:
            text = tokenizer.apply_chat_template([dict(m) for m in request.messages], tokenize=False,
                                                 add_generation_prompt=True)
            ids = tokenizer(text, add_special_tokens=False)["input_ids"]  # the template has its own BOS
        else:
            if not self._warned_plain:
                log.warning("%s has no chat template: chat messages are sent as plain text (%s). A base "
                            "model answers best to a completion prompt (`prompt=`) with a stop string.",
                            self.name, "one user message verbatim, else 'Role: content' lines")
                self._warned_plain = True
            ids = tokenizer(render_plain(request.messages), add_special_tokens=True)["input_ids"]
        if not ids:
            return ModelCallError("bad_request", f"request {request.item_id} renders to an empty prompt")
        limit = self.options.max_input_tokens
        if limit is not None and len(ids) > limit:
            return ModelCallError("bad_request", f"prompt of {request.item_id} has {len(ids)} tokens, more than "
                                  f"max_input_tokens={limit}")
        total = len(ids) + request.sampling.max_tokens
        if loaded.max_positions is not None and total > loaded.max_positions:
            return ModelCallError("bad_request", f"prompt of {request.item_id} ({len(ids)} tokens) plus max_tokens="
                                  f"{request.sampling.max_tokens} exceeds the model's {loaded.max_positions} positions")
        return _Prepared(index, request, list(ids))

    def _run_batch(self, loaded: _Loaded, chunk: list[_Prepared], deadline: float, timeout_s: float,
                   cancel: threading.Event) -> list[Outcome]:
        import torch

        helpers = _generation_helpers()
        tokenizer, model = loaded.tokenizer, loaded.model
        sampling = chunk[0].request.sampling  # max_tokens and stop are shared within a chunk
        width = max(len(p.ids) for p in chunk)
        input_ids = torch.full((len(chunk), width), loaded.pad_id, dtype=torch.long)
        attention = torch.zeros((len(chunk), width), dtype=torch.long)
        for row, item in enumerate(chunk):  # left padding: every prompt ends where generation starts
            input_ids[row, width - len(item.ids):] = torch.tensor(item.ids, dtype=torch.long)
            attention[row, width - len(item.ids):] = 1
        stop = helpers.StopOnText(tokenizer, width, sampling.stop, len(chunk))
        timer = helpers.Deadline(deadline, cancel)
        sampler = helpers.RowSampler([p.request for p in chunk])
        config = model.generation_config.__class__.from_dict(model.generation_config.to_dict())
        config.update(do_sample=False, num_beams=1, max_new_tokens=sampling.max_tokens, max_length=None,
                      temperature=None, top_p=None, top_k=None, min_p=None, pad_token_id=loaded.pad_id,
                      eos_token_id=sorted(loaded.eos_ids) or None)
        started = time.perf_counter()
        with torch.inference_mode():
            output = model.generate(input_ids=input_ids.to(self.device), attention_mask=attention.to(self.device),
                                    generation_config=config, logits_processor=[sampler],
                                    stopping_criteria=[stop, timer])
        per_item = (time.perf_counter() - started) / len(chunk)
        if cancel.is_set():
            return [ModelCallError("timeout", "cancelled by the caller")] * len(chunk)
        results: list[Outcome] = []
        for row, item in enumerate(chunk):
            generated = output[row, width:].tolist()
            ended = stop.finished_at.get(row)
            eos_at = next((j for j, t in enumerate(generated) if t in loaded.eos_ids), None)
            if eos_at is not None and (ended is None or eos_at < ended):
                tokens, reason, count = generated[:eos_at], "stop", eos_at + 1
            elif ended is not None:
                tokens, reason, count = generated[:ended], "stop", ended
            else:
                tokens, reason, count = generated, "length", len(generated)
                if timer.hit and len(generated) < sampling.max_tokens:
                    results.append(ModelCallError("timeout", f"{self.name} passed the {timeout_s:g} s limit after "
                                                  f"{len(generated)} of {sampling.max_tokens} tokens"))
                    continue
            text = tokenizer.decode(tokens, skip_special_tokens=True)
            cut = first_stop(text, sampling.stop)
            if cut is not None:
                text, reason = text[:cut], "stop"
            results.append(Response(text=text, finish_reason=reason, prompt_tokens=len(item.ids),
                                    completion_tokens=count, cost_usd=None, latency_s=per_item,
                                    model_version=f"{self.model}@{self.ref.weights_hash[:12]}:{self.dtype}"))
        return results


def render_plain(messages: Sequence[dict[str, str]]) -> str:
    """Chat messages as plain text for a model without a chat template: a lone user message (with
    an optional system message before it) verbatim, else 'Role: content' blocks ending in 'Assistant:'."""
    roles = [m.get("role") for m in messages]
    if roles == ["user"] or roles == ["system", "user"]:
        return "\n\n".join(str(m.get("content", "")) for m in messages)
    lines = [f"{str(m.get('role', 'user')).capitalize()}: {m.get('content', '')}" for m in messages]
    return "\n\n".join(lines) + "\n\nAssistant:"


def first_stop(text: str, stops: Sequence[str]) -> int | None:
    """Index of the earliest stop string in `text`, or None."""
    found = [i for i in (text.find(s) for s in stops if s) if i >= 0]
    return min(found) if found else None


def sample_seed(request: Request) -> int:
    """A request's own sampling seed, from (seed, sample_index) only: reproducible whatever else
    shares the batch, different for each sample index."""
    digest = hashlib.sha256(f"{request.sampling.seed}:{request.sample_index}".encode()).digest()
    return int.from_bytes(digest[:8], "big") & 0x7FFF_FFFF_FFFF_FFFF


def _pick_device(requested: str | None) -> str:
    import torch

    if requested is None:
        return "cuda" if torch.cuda.is_available() else "cpu"
    try:
        device = torch.device(requested)
    except (RuntimeError, ValueError):
        raise InputError(f"option device: unknown device '{requested}' (use cpu, cuda or cuda:N)") from None
    if device.type == "cuda" and not torch.cuda.is_available():
        raise InputError(f"option device: '{requested}' requested but no CUDA GPU is available to torch")
    return str(device)


def _default_dtype(device: str) -> str:
    """bf16 on GPUs that have it (fp16 on older ones); fp32 on CPU, where bf16 without native
    units measured 2.7x slower batched and changed 6 of 16 greedy answers (docs/bench/local.md)."""
    if device.startswith("cuda"):
        import torch

        return "bfloat16" if torch.cuda.is_bf16_supported() else "float16"
    return "float32"


@functools.cache
def _generation_helpers() -> Any:
    """transformers classes defined on first use, so importing this module stays cheap."""
    import torch
    from transformers import LogitsProcessor, StoppingCriteria

    class RowSampler(LogitsProcessor):
        """Greedy rows pass through; sampled rows get temperature, top-p and Gumbel noise from the
        row's own generator, so the following argmax draws exactly from the sampling distribution."""

        def __init__(self, requests: list[Request]):
            self.rows = [(i, r.sampling.temperature, r.sampling.top_p, sample_seed(r))
                         for i, r in enumerate(requests) if not r.sampling.greedy]
            self.generators: dict[int, Any] = {}

        def __call__(self, input_ids: Any, scores: Any) -> Any:
            if not self.rows:
                return scores
            scores = scores.float().clone()
            for row, temperature, top_p, seed in self.rows:
                gen = self.generators.get(row)
                if gen is None:
                    gen = self.generators[row] = torch.Generator(device=scores.device).manual_seed(seed)
                logits = scores[row] / temperature
                if top_p < 1.0:
                    ordered, order = logits.sort(descending=True)
                    probs = ordered.softmax(-1)
                    drop = (probs.cumsum(-1) - probs) > top_p  # keeps the smallest set reaching top_p
                    logits[order[drop]] = float("-inf")
                uniform = torch.rand(logits.shape, generator=gen, device=scores.device).clamp_(1e-12, 1 - 1e-7)
                scores[row] = logits - torch.log(-torch.log(uniform))
            return scores

    class StopOnText(StoppingCriteria):
        """Stops a row when its generated text (never the prompt) contains a stop string, and
        remembers after how many tokens.

        Checked every step, so a stop string that just appeared ends within the last tokens: only
        that tail is decoded (a token carries at least one character; a few more for tokens that
        decode to nothing), and it crosses from the GPU in one transfer for all rows, not one per row.
        """

        def __init__(self, tokenizer: Any, prompt_width: int, stops: Sequence[str], rows: int):
            self.tokenizer, self.width, self.stops, self.rows = tokenizer, prompt_width, [s for s in stops if s], rows
            self.window = max((len(s) for s in self.stops), default=0) + 4
            self.finished_at: dict[int, int] = {}

        def __call__(self, input_ids: Any, scores: Any, **kwargs: Any) -> Any:
            done = torch.zeros(input_ids.shape[0], dtype=torch.bool, device=input_ids.device)
            if not self.stops:
                return done
            generated = input_ids.shape[1] - self.width
            tails = input_ids[:, input_ids.shape[1] - min(generated, self.window):].tolist()
            for row, tail in enumerate(tails):
                if row not in self.finished_at:
                    text = self.tokenizer.decode(tail, skip_special_tokens=True)
                    if any(s in text for s in self.stops):
                        self.finished_at[row] = generated
                if row in self.finished_at:
                    done[row] = True
            return done

    class Deadline(StoppingCriteria):
        """Stops the whole batch when its time is up or the caller gave up waiting."""

        def __init__(self, deadline: float, cancel: threading.Event):
            self.deadline, self.cancel, self.hit = deadline, cancel, False

        def __call__(self, input_ids: Any, scores: Any, **kwargs: Any) -> Any:
            if self.cancel.is_set() or time.monotonic() > self.deadline:
                self.hit = True
            return torch.full((input_ids.shape[0],), self.hit, dtype=torch.bool, device=input_ids.device)

    return SimpleNamespace(RowSampler=RowSampler, StopOnText=StopOnText, Deadline=Deadline)
