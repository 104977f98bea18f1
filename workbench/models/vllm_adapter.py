"""`vllm/<folder | .gguf | bundled name>`: the same local models on vLLM's offline engine.

For GPUs and scale: vLLM schedules and batches internally (continuous batching, paged KV
cache, tensor parallelism across GPUs), so this adapter hands it large batches and only
translates requests and outputs. vLLM is not a dependency of the workbench: without it the
adapter refuses to be built, saying how to install it, and never falls back to anything else.

Prompts are rendered exactly as `hf/` renders them (`local_chat`: the chat template with its tools
block when it has one, which is what `LLM.chat(..., tools=...)` does, else the documented Hermes
system prompt), so that one batch holds requests with different tool sets and the two adapters give
a model the same text. vLLM then also constrains decoding with its structured outputs
(`SamplingParams(structured_outputs=StructuredOutputsParams(json=...))`, `guided_decoding=
GuidedDecodingParams(...)` before vLLM 0.10.2): a response_format's schema (or any JSON object), and
for tool_choice "required" or a named function a schema of the calls, `[{"name", "arguments"}, ...]`
(one object for a named function), the way vLLM's own server enforces them. The calls are read back
by the same parser as `hf/`.

The engine starts once per process for the same weights and engine options (`loaded_models`): the
optimizer's trials and a judge's rounds reuse it, and a second engine never claims the GPU beside
an idle first one (it is shut down first).
"""
from __future__ import annotations

import asyncio
import importlib.util
import threading
import time
import weakref
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

from pydantic import BaseModel, ConfigDict, Field

from workbench.errors import InputError, ModelCallError
from workbench.items.fields import json_schema, response_schema
from workbench.items.tool_calls import function_of
from workbench.models.base import Adapter, Outcome, Request, Response
from workbench.models.hf_adapter import sample_seed
from workbench.models.loaded_models import LoadKey, acquire, release
from workbench.models.local_chat import (
    completion_problem,
    local_key_payload,
    render_chat,
    render_without_template,
    rendering_note,
    template_takes_tools,
)
from workbench.models.local_models import has_chat_template, locate_local_model, resolve_local_model
from workbench.models.tool_parsing import read_calls

INSTALL_HINT = ("vllm is not installed: `pip install vllm` (Linux with a CUDA GPU; install it into this "
                "environment after torch). Without a GPU use `hf/<model>` instead.")


class VLLMOptions(BaseModel):
    model_config = ConfigDict(extra="forbid")

    tensor_parallel_size: int = Field(1, ge=1)
    dtype: str = "auto"  # vLLM's choice: the checkpoint's dtype, fp16 for fp32 checkpoints
    gpu_memory_utilization: float = Field(0.9, gt=0, le=1)
    max_model_len: int | None = Field(None, ge=1)
    batch_size: int = Field(256, ge=1)  # requests per generate call; vLLM batches them itself


@dataclass
class _Engine:
    llm: Any
    chat_template: bool
    tools_in_template: bool
    busy: threading.Lock = field(default_factory=threading.Lock)  # one generate at a time, whichever adapter


class VLLMAdapter(Adapter):
    provider = "vllm"
    options_model = VLLMOptions
    concurrent = False
    local_files = True
    default_timeout_s = 600.0  # one call is a batch of `batch_size` (256) requests

    def __init__(self, model: str, options: VLLMOptions, base_dir: Path | None = None):
        if importlib.util.find_spec("vllm") is None:
            raise InputError(f"model 'vllm/{model}': {INSTALL_HINT}")
        super().__init__(model, options)
        self.ref = locate_local_model(model, base_dir=base_dir)
        self.max_batch = options.batch_size
        self._engine_held: _Engine | None = None
        self._held: weakref.finalize | None = None  # lets go of the shared engine: aclose, or when garbage
        self._lock = threading.Lock()

    def identity(self) -> dict[str, Any]:
        return {"provider": self.provider, "model": self.model, "weights_sha256": self.ref.weights_hash,
                "dtype": self.options.dtype}

    def key_payload(self, request: Request) -> dict[str, Any]:
        return local_key_payload(self.name, request)

    async def prepare(self) -> None:
        """Start the engine now (it takes a while: weights, CUDA graphs), outside any call's timeout."""
        await asyncio.to_thread(self._engine_locked)

    async def generate(self, requests: Sequence[Request], timeout_s: float) -> list[Outcome]:
        # vLLM's offline engine cannot be interrupted mid-batch; the caller's timeout still applies.
        return await asyncio.to_thread(self._generate_sync, list(requests))

    async def aclose(self) -> None:
        """Let go of the shared engine; it stays up for the next adapter (`release_local_models()` stops it)."""
        with self._lock:
            self._engine_held = None
            held, self._held = self._held, None
        if held is not None:
            held()

    def load_key(self) -> LoadKey:
        """The engine is shared by adapters of the same weights and engine options (not batch_size)."""
        options = self.options
        return LoadKey(self.provider, self.ref.weights_hash,
                       (("dtype", options.dtype), ("tensor_parallel_size", options.tensor_parallel_size),
                        ("gpu_memory_utilization", options.gpu_memory_utilization),
                        ("max_model_len", options.max_model_len), ("device", "cuda")),
                       name=f"{self.name} (vLLM, {options.dtype})")

    def _engine_locked(self) -> _Engine:
        with self._lock:
            return self._engine()

    def _engine(self) -> _Engine:
        if self._engine_held is None:
            key = self.load_key()
            self._engine_held = acquire(key, self._start, need_bytes=self._claimed_bytes)
            self._held = weakref.finalize(self, release, key)
        return self._engine_held

    def _start(self) -> _Engine:
        try:
            from vllm import LLM
        except ImportError as exc:
            raise InputError(f"model '{self.name}': `import vllm` failed ({exc}). {INSTALL_HINT}") from None
        source = resolve_local_model(self.ref)
        options = self.options
        llm = LLM(model=str(source.path), tokenizer=str(source.path), dtype=options.dtype,
                  tensor_parallel_size=options.tensor_parallel_size,
                  gpu_memory_utilization=options.gpu_memory_utilization,
                  max_model_len=options.max_model_len, seed=0)
        chat_template = has_chat_template(source.path)
        return _Engine(llm, chat_template, chat_template and template_takes_tools(llm.get_tokenizer()))

    def _claimed_bytes(self) -> int | None:
        """vLLM claims this share of the GPU's memory for itself, whatever the model's size."""
        import torch

        if not torch.cuda.is_available():
            return None
        return int(self.options.gpu_memory_utilization * torch.cuda.mem_get_info()[1])

    def _generate_sync(self, requests: list[Request]) -> list[Outcome]:
        with self._lock:
            try:
                engine = self._engine()
            except InputError as exc:
                return [ModelCallError("unavailable", str(exc))] * len(requests)
            except Exception as exc:
                return [ModelCallError("unavailable", f"could not start vLLM for {self.name}: "
                                       f"{type(exc).__name__}: {exc}")] * len(requests)
            with engine.busy:
                return self._generate_on(engine, requests)

    def _generate_on(self, engine: _Engine, requests: list[Request]) -> list[Outcome]:
        from vllm import SamplingParams

        llm = engine.llm
        outcomes: list[Outcome | None] = [None] * len(requests)
        prompts, params, indices = [], [], []
        tokenizer = llm.get_tokenizer()
        for index, request in enumerate(requests):
            prompt = self._prompt(engine, tokenizer, request)
            if isinstance(prompt, ModelCallError):
                outcomes[index] = prompt
                continue
            sampling = request.sampling
            params.append(SamplingParams(
                n=1, temperature=sampling.temperature, top_p=sampling.top_p if not sampling.greedy else 1.0,
                max_tokens=sampling.max_tokens, stop=list(sampling.stop) or None,
                seed=None if sampling.greedy else sample_seed(request), **structured_outputs(request)))
            prompts.append(prompt)
            indices.append(index)
        if prompts:
            started = time.perf_counter()
            try:
                results = llm.generate(prompts, params, use_tqdm=False)
            except Exception as exc:
                error = ModelCallError("unavailable", f"vLLM failed: {type(exc).__name__}: {exc}")
                results = [error] * len(prompts)
            per_item = (time.perf_counter() - started) / len(prompts)
            for index, result in zip(indices, results):
                outcomes[index] = result if isinstance(result, ModelCallError) \
                    else self._response(engine, requests[index], result, per_item)
        return [o if o is not None else ModelCallError("bad_output", "no outcome") for o in outcomes]

    def _prompt(self, engine: _Engine, tokenizer: Any, request: Request) -> dict[str, Any] | ModelCallError:
        """The same rendering as the hf adapter: chat template (with tools when it takes them) when
        there is one, else plain text."""
        problem = completion_problem(request)
        if problem:
            return ModelCallError("bad_request", problem)
        if request.prompt is not None:
            return {"prompt": request.prompt}
        if not request.messages:
            return ModelCallError("bad_request", f"request {request.item_id} has neither messages nor a prompt")
        if engine.chat_template:
            try:
                text = render_chat(tokenizer, request, engine.tools_in_template)
            except Exception as exc:  # a template that refuses these turns (roles, order)
                return ModelCallError("bad_request", f"the chat template of {self.name} cannot render request "
                                      f"{request.item_id}: {type(exc).__name__}: {exc}")
            return {"prompt_token_ids": list(tokenizer(text, add_special_tokens=False)["input_ids"])}
        return {"prompt": render_without_template(request)}

    def _response(self, engine: _Engine, request: Request, result: Any, latency_s: float) -> Outcome:
        if not result.outputs:
            return ModelCallError("bad_output", "vLLM returned no completion")
        completion = result.outputs[0]
        reason = completion.finish_reason
        if reason not in ("stop", "length"):
            return ModelCallError("server", f"vLLM finished with '{reason}'")
        text, calls, reason = read_calls(request, completion.text, reason)
        note = rendering_note(request, engine.tools_in_template)
        return Response(text=text, finish_reason=reason, tool_calls=calls,
                        prompt_tokens=len(result.prompt_token_ids or []) or None,
                        completion_tokens=len(completion.token_ids), cost_usd=None, latency_s=latency_s,
                        model_version=f"{self.model}@{self.ref.weights_hash[:12]}:{self.options.dtype}{note}")


def structured_outputs(request: Request) -> dict[str, Any]:
    """SamplingParams keywords that constrain a request's answer (none for free text): the calls a
    tool_choice forces, else the response_format's schema."""
    spec = _constraint(request)
    if spec is None:
        return {}
    import vllm.sampling_params as params

    if hasattr(params, "StructuredOutputsParams"):
        return {"structured_outputs": params.StructuredOutputsParams(**spec)}
    return {"guided_decoding": params.GuidedDecodingParams(**spec)}  # vLLM before 0.10.2


def _constraint(request: Request) -> dict[str, Any] | None:
    choice = request.tool_choice
    if request.prompt is None and request.tools and (choice == "required" or isinstance(choice, dict)):
        forced = function_of(choice).get("name") if isinstance(choice, dict) else None
        calls = [_call_schema(tool) for tool in request.tools
                 if forced is None or function_of(tool).get("name") == forced]
        if not calls:  # a named function that is not declared (items refuse it): nothing to constrain to
            return None
        if forced is not None:
            return {"json": calls[0]}
        return {"json": {"type": "array", "minItems": 1, "items": {"anyOf": calls}}}
    if request.response_format is not None:
        schema = response_schema(request.response_format)
        return {"json_object": True} if schema is None else {"json": schema}
    return None


def _call_schema(tool: dict[str, Any]) -> dict[str, Any]:
    function = function_of(tool)
    parameters = json_schema(function.get("parameters") or {"type": "object", "properties": {}})
    return {"type": "object", "properties": {"name": {"type": "string", "enum": [function.get("name")]},
                                             "arguments": parameters},
            "required": ["name", "arguments"], "additionalProperties": False}
