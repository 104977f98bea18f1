"""`hf/<folder | .gguf | bundled name>`: a local transformers model, batched, offline.

The model loads lazily on the first `generate` (or `prepare`), from disk only, once per process:
adapters of the same weights, dtype and device share it (`loaded_models`), so the optimizer's trials
and a judge's rounds do not load it again; `aclose` leaves it loaded, idle, until
`release_local_models()` or a new model needing its memory. Requests decode together in a batch
that stays full (continuous batching: a finished row's slot goes to the next waiting request at
once, see `_Decoder`); greedy decoding
when temperature is 0, with the same outputs as one request at a time. Sampling draws each request's tokens from its own seeded generator (Gumbel-max, exact for
temperature and top-p), so a sample is reproducible from (seed, sample_index) whatever else
shares its batch. Generation runs in a worker thread and stops early at a deadline or when the
awaiting task is cancelled, so a timed-out batch does not keep the CPU busy.

Tools, tool turns and a response_format are rendered by `local_chat` (the model's own chat template
when it has a tools block, else the documented Hermes-style system prompt), and the calls the model
writes are read back by `tool_parsing`; each response's model_version says which rendering it read.
"""
from __future__ import annotations

import asyncio
import collections
import functools
import hashlib
import inspect
import logging
import sys
import threading
import time
import weakref
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, Sequence

from pydantic import BaseModel, ConfigDict, Field, field_validator

from workbench.errors import InputError, ModelCallError
from workbench.models.base import Adapter, Outcome, Request, Response
from workbench.models.local_chat import (CHAT_TEMPLATE, HERMES, completion_problem, local_key_payload, render_chat,
                                         render_without_template, rendering_note, template_takes_tools)
from workbench.models.loaded_models import LoadKey, acquire, release, weights_bytes
from workbench.models.local_models import LocalModelSource, locate_local_model, resolve_local_model
from workbench.models.tool_parsing import read_calls

log = logging.getLogger(__name__)

_DTYPES = {"float32": "float32", "fp32": "float32", "float": "float32", "bfloat16": "bfloat16", "bf16": "bfloat16",
           "float16": "float16", "fp16": "float16", "half": "float16"}


class HFOptions(BaseModel):
    model_config = ConfigDict(extra="forbid")

    device: str | None = None  # None: cuda when available, else cpu
    dtype: str | None = None  # None: bfloat16 on GPU, float32 on CPU (faster batched there, and exact)
    batch_size: int | None = Field(None, ge=1, le=1024)  # rows decoded at once; None: 32 on GPU, 16 on CPU
    scheduling: Literal["continuous", "static"] = "continuous"  # refill finished rows, or wait for the batch
    max_input_tokens: int | None = Field(None, ge=1)  # longer prompts fail as bad_request

    @field_validator("dtype")
    @classmethod
    def _known_dtype(cls, value: str | None) -> str | None:
        if value is None or value == "auto":
            return None
        if value.lower() not in _DTYPES:
            raise ValueError(f"unknown dtype '{value}' (use float32, bfloat16 or float16)")
        return _DTYPES[value.lower()]


CALL_BATCHES = 4  # requests per generate call, in batches: rows refill from the call's own requests
# Prompts that begin with the same tokens (a system prompt with tool declarations, a few-shot
# preamble) share the keys and values of that beginning when it is at least this long: prefilled
# once, not once per request. Shorter shared beginnings are not worth a separate pass.
MIN_SHARED_PREFIX = 64
DEADLINE_MARGIN_S = 2.0  # at most this much (10% of the limit) before the call's time is up


@dataclass
class _Loaded:
    source: LocalModelSource
    tokenizer: Any
    model: Any
    eos_ids: frozenset[int]
    pad_id: int
    max_positions: int | None
    load_s: float
    tools_in_template: bool = False  # the chat template renders `tools` (else: the Hermes system prompt)
    plain_cache: bool = False  # every cache layer grows plainly (no sliding window): prefixes can be shared
    prefix: "_Prefix | None" = None  # the last shared prompt beginning, kept across calls
    # One batch at a time on the model, whichever adapter sends it (adapters share a loaded model).
    busy: threading.Lock = field(default_factory=threading.Lock)


@dataclass
class _Prefix:
    """The keys and values (one row, every layer) of a prompt beginning that requests share."""

    ids: list[int]
    kv: list[tuple[Any, Any]]

    def cut(self, length: int) -> "_Prefix":
        """The first `length` tokens: keys and values of a token depend on the tokens before it only."""
        return _Prefix(self.ids[:length], [(k[:, :, :length], v[:, :, :length]) for k, v in self.kv])


@dataclass
class _Prepared:
    index: int
    request: Request
    ids: list[int]


class HFAdapter(Adapter):
    """Local transformers model. `slots` rows decode at once; one call (`max_batch` requests, a few
    batches' worth, so that finished rows are refilled from the same call) runs at a time."""

    provider = "hf"
    options_model = HFOptions
    concurrent = False
    local_files = True
    # One call decodes `max_batch` rows (4 batches of 16 on a CPU): 64 answers of 128 tokens take
    # minutes on 2 cores, more under load. The decoder stops before the limit and keeps what finished.
    default_timeout_s = 600.0

    def __init__(self, model: str, options: HFOptions, base_dir: Path | None = None):
        super().__init__(model, options)
        self.ref = locate_local_model(model, base_dir=base_dir)  # bad specs fail here, before any call is planned
        self.device = _pick_device(options.device)
        # CPU: 16 rows measured 4.7-5.5x one-by-one, 8 rows 3.0-3.3x (docs/bench/local.md)
        self.slots = options.batch_size or (32 if self.device.startswith("cuda") else 16)
        self.max_batch = self.slots * CALL_BATCHES
        self.dtype = options.dtype or _default_dtype(self.device)
        self._loaded: _Loaded | None = None
        self._lock = threading.Lock()  # one acquire, one batch at a time, whatever the caller does
        self._held: weakref.finalize | None = None  # lets go of the shared model: aclose, or when garbage
        self._warned_plain = False
        # Work done since loading: prefill passes, decode steps and rows decoded in them (their
        # ratio to steps * slots is how full the batch stayed).
        self.stats: collections.Counter[str] = collections.Counter()

    def identity(self) -> dict[str, Any]:
        # The weights' content (not their path) and the dtype change the output; the device and
        # batch size only add noise at the level of float rounding.
        return {"provider": self.provider, "model": self.model, "weights_sha256": self.ref.weights_hash,
                "dtype": self.dtype}

    def key_payload(self, request: Request) -> dict[str, Any]:
        return local_key_payload(self.name, request)

    @property
    def tools_rendering(self) -> str | None:
        """How tools reach the loaded model: 'chat-template', 'hermes-system-prompt-v1' (None before loading)."""
        if self._loaded is None:
            return None
        return CHAT_TEMPLATE if self._loaded.tools_in_template else HERMES

    @property
    def load_seconds(self) -> float | None:
        """How long loading the model took (in this process, by whichever adapter loaded it)."""
        return self._loaded.load_s if self._loaded else None

    def load_key(self) -> LoadKey:
        """What this adapter's loaded model is shared by: the weights' content, dtype and device."""
        return LoadKey(self.provider, self.ref.weights_hash, (("dtype", self.dtype), ("device", self.device)),
                       name=f"{self.name} ({self.dtype}, {self.device})")

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
        key = self.load_key()
        source = resolve_local_model(self.ref)  # converts a GGUF the first time only
        self._loaded = acquire(key, lambda: self._load(source),
                               need_bytes=lambda: weights_bytes(source.path, self.dtype))
        self._held = weakref.finalize(self, release, key)  # an adapter never closed still lets go
        return self._loaded

    def _load(self, source: LocalModelSource) -> _Loaded:
        """Read the weights and tokenizer from disk (called by `loaded_models.acquire`, once per process)."""
        import torch
        from transformers import AutoModelForCausalLM, AutoTokenizer

        start = time.perf_counter()
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
        ignored = _unapplied_generation_defaults(model.generation_config)
        if ignored:
            log.warning("%s: its generation_config sets %s; hf/ decodes with the request's sampling only and "
                        "does not apply them", self.name, ", ".join(ignored))
        tools_in_template = source.chat_template and template_takes_tools(tokenizer)
        plain_cache = _plain_cache(model)
        loaded = _Loaded(source, tokenizer, model, eos_ids, int(tokenizer.pad_token_id),
                         getattr(model.config, "max_position_embeddings", None), time.perf_counter() - start,
                         tools_in_template, plain_cache)
        log.info("loaded %s from %s in %.1f s (%s, %s; tools %s)", self.name, source.path, loaded.load_s,
                 self.device, self.dtype, "through its chat template" if tools_in_template else
                 "in the Hermes-style system prompt (its chat template has no tools block)")
        return loaded

    def _unload(self) -> None:
        """This adapter lets go of the shared model (it stays loaded for the next adapter, see loaded_models)."""
        with self._lock:
            self._loaded = None
            held, self._held = self._held, None
        if held is not None:
            held()

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
            # Loading does not count against the call. The decoder stops a little before the call
            # layer's own limit, so that the answers already finished are handed back, not dropped.
            deadline = time.monotonic() + timeout_s - min(DEADLINE_MARGIN_S, 0.1 * timeout_s)
            with loaded.busy:  # another adapter's batch on the same model finishes first
                return self._decode(loaded, requests, timeout_s, deadline, cancel)

    def _decode(self, loaded: _Loaded, requests: list[Request], timeout_s: float, deadline: float,
                cancel: threading.Event) -> list[Outcome]:
        outcomes: list[Outcome | None] = [None] * len(requests)
        items: list[_Prepared] = []
        for index, request in enumerate(requests):
            prepared = self._prepare(loaded, index, request)
            if isinstance(prepared, ModelCallError):
                outcomes[index] = prepared
            else:
                items.append(prepared)
        if items:
            try:
                decoder = _Decoder(self, loaded, deadline, timeout_s, cancel)
            except ImportError as exc:  # transformers before 4.56 has no DynamicLayer / logits_to_keep
                return [ModelCallError("unavailable", f"{self.name} needs transformers >= 5.17 (as "
                                       f"pyproject.toml says): {exc}")] \
                    * len(requests)
            for index, outcome in decoder.run(items).items():
                outcomes[index] = outcome
        return [o if o is not None else ModelCallError("bad_output", "no outcome") for o in outcomes]

    def _prepare(self, loaded: _Loaded, index: int, request: Request) -> _Prepared | ModelCallError:
        """Render and tokenize one request; a request the model cannot take fails alone."""
        tokenizer = loaded.tokenizer
        problem = completion_problem(request)
        if problem:
            return ModelCallError("bad_request", problem)
        if request.prompt is not None:
            ids = tokenizer(request.prompt, add_special_tokens=True)["input_ids"]
        elif not request.messages:
            return ModelCallError("bad_request", f"request {request.item_id} has neither messages nor a prompt")
        elif loaded.source.chat_template:
            try:
                text = render_chat(tokenizer, request, loaded.tools_in_template)
            except Exception as exc:  # a template that refuses these turns (roles, order)
                return ModelCallError("bad_request", f"the chat template of {self.name} cannot render request "
                                      f"{request.item_id}: {type(exc).__name__}: {exc}")
            ids = tokenizer(text, add_special_tokens=False)["input_ids"]  # the template has its own BOS
        else:
            if not self._warned_plain:
                log.warning("%s has no chat template: chat messages are sent as plain text (%s). A base "
                            "model answers best to a completion prompt (`prompt=`) with a stop string.",
                            self.name, "one user message verbatim, else 'Role: content' lines")
                self._warned_plain = True
            ids = tokenizer(render_without_template(request), add_special_tokens=True)["input_ids"]
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

@dataclass(eq=False)
class _Row:
    """One request while it decodes: its own position, tokens, sampler and stop check."""

    item: _Prepared
    started: float
    position: int  # position id of the next token fed (the row's own count, whatever its padding)
    generator: Any = None  # sampled requests only: their own seeded torch.Generator
    tokens: list[int] = field(default_factory=list)
    last: int = -1
    reason: str | None = None  # "stop" or "length" once finished
    count: int = 0  # completion tokens, an end-of-sequence token included
    finished: float = 0.0


class _Decoder:
    """Decodes one call's requests through `adapter.slots` rows at once (one forward pass per step).

    Continuous batching: a row that finishes (end of sequence, stop string, max_tokens) leaves the
    batch at once, and a waiting request takes its slot: its prompt is prefilled on its own and
    its KV cache joins the batch's, left-padded to the same width (an attention mask hides the
    padding; each row keeps its own position ids). Columns that became padding in every row are
    cut off, so the cache stays as wide as the longest live row. Greedy rows take the argmax of
    float32 logits; sampled rows draw with their own generator, so neither depends on what else
    shares the batch (beyond float rounding of other matmul shapes).

    Refilling needs plain growing caches (`DynamicLayer`); a model whose cache has sliding or
    other special layers (Gemma 3) decodes in static batches: new rows join only an empty batch.
    """

    refill_at = 1  # free slots that trigger a refill

    def __init__(self, adapter: "HFAdapter", loaded: _Loaded, deadline: float, timeout_s: float,
                 cancel: threading.Event):
        import torch
        from transformers import DynamicCache
        from transformers.cache_utils import DynamicLayer

        self.torch, self.new_cache, self.plain_layer = torch, DynamicCache, DynamicLayer
        self.adapter, self.loaded, self.model = adapter, loaded, loaded.model
        self.cache_arg = _cache_argument(type(self.model))
        self.device, self.slots = adapter.device, adapter.slots
        self.continuous = adapter.options.scheduling == "continuous"
        self.deadline, self.timeout_s, self.cancel = deadline, timeout_s, cancel
        self.rows: list[_Row] = []
        self.cache: Any = None
        self.mask: Any = None  # (rows, cache width) 1 = real token, 0 = padding
        self.mergeable = False  # set by the first prefill: can rows join a running batch?
        self.outcomes: dict[int, Outcome] = {}

    def run(self, items: list[_Prepared]) -> dict[int, Outcome]:
        waiting = collections.deque(items)
        try:
            with self.torch.inference_mode():
                while waiting or self.rows:
                    if self.cancel.is_set() or time.monotonic() > self.deadline:
                        self._time_out(waiting)
                        break
                    free = self.slots - len(self.rows)
                    if waiting and free and (not self.rows or (self.continuous and self.mergeable
                                                               and free >= min(self.refill_at, len(waiting)))):
                        self._admit([waiting.popleft() for _ in range(min(free, len(waiting)))])
                    else:
                        self._step()
                    self._retire()
        except Exception as exc:  # out of memory, a broken model: what has not finished fails alike
            error = ModelCallError("unavailable", f"{self.adapter.name} failed: {type(exc).__name__}: {exc}")
            for item in items:
                self.outcomes.setdefault(item.index, error)
        return self.outcomes

    # --- the batch ------------------------------------------------------------------------------

    def _admit(self, items: list[_Prepared]) -> None:
        """Prefill `items` together (left-padded) and add them to the batch with their first token.
        A shared prompt beginning (`_shared_prefix`) is not prefilled again: its keys and values
        start every row's cache, and only the rest of each prompt is prefilled, left-padded after it
        (the mask hides the padding between; positions continue after the prefix)."""
        torch = self.torch
        started = time.perf_counter()
        shared = self._shared_prefix(items)
        skip = len(shared.ids) if shared else 0
        width = max(len(item.ids) - skip for item in items)
        pad = self.loaded.pad_id
        ids = torch.tensor([[pad] * (width - len(i.ids) + skip) + i.ids[skip:] for i in items], device=self.device)
        mask = torch.tensor([[0] * (width - len(i.ids) + skip) + [1] * (len(i.ids) - skip) for i in items],
                            device=self.device)
        positions = (mask.cumsum(-1) - 1).clamp_(min=0) + skip
        cache = self.new_cache(config=self.model.config)
        if shared:
            for layer, (keys, values) in enumerate(shared.kv):
                cache.update(keys.expand(len(items), -1, -1, -1), values.expand(len(items), -1, -1, -1), layer)
            mask = torch.cat([mask.new_ones((len(items), skip)), mask], dim=1)
            self.adapter.stats.update(prefix_reused_tokens=skip * len(items))
        out = self.model(input_ids=ids, attention_mask=mask, position_ids=positions, use_cache=True,
                         logits_to_keep=1, **{self.cache_arg: cache})
        if shared is None and len(items) == 1 and self.loaded.plain_cache and len(items[0].ids) > MIN_SHARED_PREFIX:
            # A prompt alone: the next requests (one by one) may begin like it.
            self.loaded.prefix = _Prefix(list(items[0].ids), [(layer.keys, layer.values) for layer in cache.layers])
        self.adapter.stats.update(prefills=1, prefilled_rows=len(items), prefilled_tokens=int(ids.numel()),
                                  prefill_s=time.perf_counter() - started)
        rows = [_Row(item, started, len(item.ids), self._generator(item.request)) for item in items]
        if not self.rows:
            self.cache, self.mask, self.rows = cache, mask, rows
            self.mergeable = all(type(layer) is self.plain_layer for layer in self.cache.layers)
        else:
            self._merge(cache, mask, rows)
            self.adapter.stats.update(joined_rows=len(rows))  # rows that joined a running batch
        self._advance(rows, out.logits[:, -1, :])

    def _shared_prefix(self, items: list[_Prepared]) -> _Prefix | None:
        """The beginning (at least MIN_SHARED_PREFIX tokens) that every prompt in `items` shares with
        the kept prefix, or among themselves (prefilled once, then kept); None when there is none.
        Every prompt keeps at least its last token to prefill."""
        loaded = self.loaded
        if not loaded.plain_cache:  # sliding-window layers (Gemma 3) keep only a window of the prefix
            return None
        limit = min(len(item.ids) for item in items) - 1
        common = _common_length([item.ids for item in items], limit)
        kept = loaded.prefix
        if kept is not None:
            reuse = _common_length([kept.ids, items[0].ids], min(common, len(kept.ids)))
            if reuse >= MIN_SHARED_PREFIX:
                if reuse < len(kept.ids):
                    loaded.prefix = kept = kept.cut(reuse)
                return kept
        if len(items) < 2 or common < MIN_SHARED_PREFIX:
            return None
        torch = self.torch
        cache = self.new_cache(config=self.model.config)
        ids = torch.tensor([items[0].ids[:common]], device=self.device)
        self.model(input_ids=ids, attention_mask=torch.ones_like(ids), position_ids=torch.arange(
            common, device=self.device)[None], use_cache=True, logits_to_keep=1, **{self.cache_arg: cache})
        loaded.prefix = _Prefix(list(items[0].ids[:common]), [(layer.keys, layer.values) for layer in cache.layers])
        self.adapter.stats.update(prefix_prefills=1, prefilled_tokens=common)
        return loaded.prefix

    def _merge(self, cache: Any, mask: Any, rows: list[_Row]) -> None:
        torch = self.torch
        width = max(self.mask.shape[1], mask.shape[1])
        for mine, theirs in zip(self.cache.layers, cache.layers):
            mine.keys = torch.cat([_pad_left(mine.keys, width), _pad_left(theirs.keys, width)])
            mine.values = torch.cat([_pad_left(mine.values, width), _pad_left(theirs.values, width)])
        self.mask = torch.cat([_pad_left(self.mask, width), _pad_left(mask, width)])
        self.rows += rows

    def _step(self) -> None:
        """One decode step: every row feeds its last token."""
        torch, rows = self.torch, self.rows
        ids = torch.tensor([[row.last] for row in rows], device=self.device)
        positions = torch.tensor([[row.position] for row in rows], device=self.device)
        for row in rows:
            row.position += 1
        self.mask = torch.cat([self.mask, self.mask.new_ones((len(rows), 1))], dim=1)
        started = time.perf_counter()
        out = self.model(input_ids=ids, attention_mask=self.mask, position_ids=positions, use_cache=True,
                         **{self.cache_arg: self.cache})
        self.adapter.stats.update(steps=1, row_steps=len(rows), step_s=time.perf_counter() - started)
        self._advance(rows, out.logits[:, -1, :])

    def _advance(self, rows: list[_Row], logits: Any) -> None:
        """Choose each row's next token (one device transfer for all rows) and check its end."""
        logits = logits.float()
        sampled = [(i, row) for i, row in enumerate(rows) if row.generator is not None]
        if sampled:
            logits = logits.clone()
            for i, row in sampled:
                sampling = row.item.request.sampling
                logits[i] = _gumbel(self.torch, logits[i], sampling.temperature, sampling.top_p, row.generator)
        now = time.perf_counter()
        eos = self.loaded.eos_ids
        for row, token in zip(rows, logits.argmax(dim=-1).tolist()):
            row.last = token
            sampling = row.item.request.sampling
            if token in eos:
                row.reason, row.count = "stop", len(row.tokens) + 1
            else:
                row.tokens.append(token)
                row.count = len(row.tokens)
                if sampling.stop and stop_in_tail(self.loaded.tokenizer, row.tokens, sampling.stop):
                    row.reason = "stop"
                elif len(row.tokens) >= sampling.max_tokens:
                    row.reason = "length"
            if row.reason:
                row.finished = now

    def _retire(self) -> None:
        """Finished rows leave the batch; padding columns every row has are cut off."""
        if not any(row.reason for row in self.rows):
            return
        keep = []
        for i, row in enumerate(self.rows):
            if row.reason:
                self.outcomes[row.item.index] = self._response(row)
            else:
                keep.append(i)
        if not keep:
            self.rows, self.cache, self.mask = [], None, None
            return
        index = self.torch.tensor(keep, device=self.device)
        for layer in self.cache.layers:
            layer.batch_select_indices(index)
        self.mask = self.mask[index]
        self.rows = [self.rows[i] for i in keep]
        if self.mergeable:
            first = int(self.mask.argmax(dim=1).min())  # the first real token of the longest row
            if first:
                for layer in self.cache.layers:
                    layer.keys, layer.values = layer.keys[:, :, first:], layer.values[:, :, first:]
                self.mask = self.mask[:, first:]

    def _time_out(self, waiting: collections.deque[_Prepared]) -> None:
        if self.cancel.is_set():
            error = ModelCallError("timeout", "cancelled by the caller")
            for item in [row.item for row in self.rows] + list(waiting):
                self.outcomes[item.index] = error
            return
        for row in self.rows:
            self.outcomes[row.item.index] = ModelCallError(
                "timeout", f"{self.adapter.name} passed the {self.timeout_s:g} s limit after {len(row.tokens)} of "
                f"{row.item.request.sampling.max_tokens} tokens")
        for item in waiting:
            self.outcomes[item.index] = ModelCallError(
                "timeout", f"{self.adapter.name} passed the {self.timeout_s:g} s limit before this request's turn")

    def _generator(self, request: Request) -> Any:
        if request.sampling.greedy:
            return None
        return self.torch.Generator(device=self.device).manual_seed(sample_seed(request))

    def _response(self, row: _Row) -> Response:
        request, adapter = row.item.request, self.adapter
        text = self.loaded.tokenizer.decode(row.tokens, skip_special_tokens=True)
        reason = row.reason
        if reason == "length":  # the last token may hold half a character: its bytes decode to U+FFFD
            text = text.rstrip("\ufffd")
        cut = first_stop(text, request.sampling.stop)
        if cut is not None:
            text, reason = text[:cut], "stop"
        text, calls, reason = read_calls(request, text, reason)
        note = rendering_note(request, self.loaded.tools_in_template)
        return Response(text=text, finish_reason=reason, prompt_tokens=len(row.item.ids), completion_tokens=row.count,
                        cost_usd=None, latency_s=row.finished - row.started, tool_calls=calls,
                        model_version=f"{adapter.model}@{adapter.ref.weights_hash[:12]}:{adapter.dtype}{note}")


@functools.cache
def _cache_argument(model_class: type) -> str:
    """transformers 5.24 renamed `past_key_values` to `cache` (the old name warns); earlier 5.x
    releases (the GPU machines') know only the old one."""
    return "cache" if "cache" in inspect.signature(model_class.forward).parameters else "past_key_values"


def _common_length(sequences: Sequence[Sequence[int]], limit: int) -> int:
    """How many leading tokens all `sequences` share, at most `limit`."""
    first = sequences[0]
    length = max(0, min(limit, *(len(s) for s in sequences)))
    for other in sequences[1:]:
        n = 0
        while n < length and first[n] == other[n]:
            n += 1
        length = n
    return length


def _plain_cache(model: Any) -> bool:
    """Whether every layer of the model's cache is a plain growing one (no sliding window)."""
    from transformers import DynamicCache
    from transformers.cache_utils import DynamicLayer

    return all(type(layer) is DynamicLayer for layer in DynamicCache(config=model.config).layers)


def stop_in_tail(tokenizer: Any, tokens: list[int], stops: Sequence[str]) -> bool:
    """Whether the generated text (never the prompt) now contains a stop string. Checked after
    every token, so a stop string that just appeared ends within the last tokens: only that tail
    is decoded (a token carries at least one character; a few more for tokens that decode to
    nothing)."""
    stops = [s for s in stops if s]
    if not stops:
        return False
    window = max(len(s) for s in stops) + 4
    text = tokenizer.decode(tokens[-window:], skip_special_tokens=True)
    return any(s in text for s in stops)


def _pad_left(tensor: Any, width: int) -> Any:
    """Zeros before the sequence axis (the last but one for a cache, the last for a mask) up to `width`."""
    import torch.nn.functional as F

    axis = -2 if tensor.dim() == 4 else -1
    missing = width - tensor.shape[axis]
    if missing <= 0:
        return tensor
    return F.pad(tensor, (0, 0, missing, 0) if axis == -2 else (missing, 0))


def _gumbel(torch: Any, logits: Any, temperature: float, top_p: float, generator: Any) -> Any:
    """Temperature, top-p and Gumbel noise from the row's own generator, so that the argmax draws
    exactly from the sampling distribution."""
    logits = logits / temperature
    if top_p < 1.0:
        ordered, order = logits.sort(descending=True)
        probs = ordered.softmax(-1)
        drop = (probs.cumsum(-1) - probs) > top_p  # keeps the smallest set reaching top_p
        logits[order[drop]] = float("-inf")
    uniform = torch.rand(logits.shape, generator=generator, device=logits.device).clamp_(1e-12, 1 - 1e-7)
    return logits - torch.log(-torch.log(uniform))


def first_stop(text: str, stops: Sequence[str]) -> int | None:
    """Index of the earliest stop string in `text`, or None."""
    found = [i for i in (text.find(s) for s in stops if s) if i >= 0]
    return min(found) if found else None


def sample_seed(request: Request) -> int:
    """A request's own sampling seed, from (seed, sample_index) only: reproducible whatever else
    shares the batch, different for each sample index."""
    digest = hashlib.sha256(f"{request.sampling.seed}:{request.sample_index}".encode()).digest()
    return int.from_bytes(digest[:8], "big") & 0x7FFF_FFFF_FFFF_FFFF


def _unapplied_generation_defaults(config: Any) -> list[str]:
    """Output-changing defaults in a model's generation_config that the decoder does not apply."""
    found = []
    for name, neutral in (("repetition_penalty", 1.0), ("encoder_repetition_penalty", 1.0),
                          ("no_repeat_ngram_size", 0), ("min_new_tokens", 0), ("min_length", 0)):
        value = getattr(config, name, None)
        if value is not None and value != neutral:
            found.append(f"{name}={value}")
    for name in ("bad_words_ids", "suppress_tokens", "begin_suppress_tokens", "sequence_bias",
                 "forced_bos_token_id", "forced_eos_token_id"):
        if getattr(config, name, None):
            found.append(name)
    return found


NVIDIA_DRIVER = Path("/proc/driver/nvidia/version")  # on Linux, there only when the NVIDIA driver is loaded


def _pick_device(requested: str | None) -> str:
    if requested is None and "torch" not in sys.modules and _no_cuda_possible():
        return "cpu"  # what torch would say, without its 1.2 s import (a warm report needs torch for nothing else)
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


def _no_cuda_possible() -> bool:
    """No CUDA GPU can be here, told without importing torch: macOS (torch has no CUDA there), or Linux
    without the NVIDIA driver. Elsewhere torch is asked."""
    if sys.platform == "darwin":
        return True
    return sys.platform.startswith("linux") and not NVIDIA_DRIVER.exists()


def _default_dtype(device: str) -> str:
    """bf16 on GPUs that have it (fp16 on older ones); fp32 on CPU, where bf16 without native
    units measured 2.7x slower batched and changed 6 of 16 greedy answers (docs/bench/local.md)."""
    if device.startswith("cuda"):
        import torch

        return "bfloat16" if torch.cuda.is_bf16_supported() else "float16"
    return "float32"


