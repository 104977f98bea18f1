"""`vllm/<folder | .gguf | bundled name>`: the same local models on vLLM's offline engine.

For GPUs and scale: vLLM schedules and batches internally (continuous batching, paged KV
cache, tensor parallelism across GPUs), so this adapter hands it large batches and only
translates requests and outputs. vLLM is not a dependency of the workbench: without it the
adapter refuses to be built, saying how to install it, and never falls back to anything else.
"""
from __future__ import annotations

import asyncio
import importlib.util
import threading
import time
from pathlib import Path
from typing import Any, Sequence

from pydantic import BaseModel, ConfigDict, Field

from workbench.errors import InputError, ModelCallError
from workbench.models.base import Adapter, Outcome, Request, Response
from workbench.models.hf_adapter import render_plain, sample_seed
from workbench.models.local_models import has_chat_template, locate_local_model, resolve_local_model

INSTALL_HINT = ("vllm is not installed: `pip install vllm` (Linux with a CUDA GPU; install it into this "
                "environment after torch). Without a GPU use `hf/<model>` instead.")


class VLLMOptions(BaseModel):
    model_config = ConfigDict(extra="forbid")

    tensor_parallel_size: int = Field(1, ge=1)
    dtype: str = "auto"  # vLLM's choice: the checkpoint's dtype, fp16 for fp32 checkpoints
    gpu_memory_utilization: float = Field(0.9, gt=0, le=1)
    max_model_len: int | None = Field(None, ge=1)
    batch_size: int = Field(256, ge=1)  # requests per generate call; vLLM batches them itself


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
        self._llm: Any = None
        self._chat_template = False
        self._lock = threading.Lock()

    def identity(self) -> dict[str, Any]:
        return {"provider": self.provider, "model": self.model, "weights_sha256": self.ref.weights_hash,
                "dtype": self.options.dtype}

    async def prepare(self) -> None:
        """Start the engine now (it takes a while: weights, CUDA graphs), outside any call's timeout."""
        await asyncio.to_thread(self._engine_locked)

    async def generate(self, requests: Sequence[Request], timeout_s: float) -> list[Outcome]:
        # vLLM's offline engine cannot be interrupted mid-batch; the caller's timeout still applies.
        return await asyncio.to_thread(self._generate_sync, list(requests))

    async def aclose(self) -> None:
        with self._lock:
            self._llm = None
        import gc

        gc.collect()

    def _engine_locked(self) -> Any:
        with self._lock:
            return self._engine()

    def _engine(self) -> Any:
        if self._llm is None:
            try:
                from vllm import LLM
            except ImportError as exc:
                raise InputError(f"model '{self.name}': `import vllm` failed ({exc}). {INSTALL_HINT}") from None
            source = resolve_local_model(self.ref)
            options = self.options
            self._llm = LLM(model=str(source.path), tokenizer=str(source.path), dtype=options.dtype,
                            tensor_parallel_size=options.tensor_parallel_size,
                            gpu_memory_utilization=options.gpu_memory_utilization,
                            max_model_len=options.max_model_len, seed=0)
            self._chat_template = has_chat_template(source.path)
        return self._llm

    def _generate_sync(self, requests: list[Request]) -> list[Outcome]:
        with self._lock:
            try:
                llm = self._engine()
            except InputError as exc:
                return [ModelCallError("unavailable", str(exc))] * len(requests)
            except Exception as exc:
                return [ModelCallError("unavailable", f"could not start vLLM for {self.name}: "
                                       f"{type(exc).__name__}: {exc}")] * len(requests)
            from vllm import SamplingParams

            outcomes: list[Outcome | None] = [None] * len(requests)
            prompts, params, indices = [], [], []
            tokenizer = llm.get_tokenizer()
            for index, request in enumerate(requests):
                prompt = self._prompt(tokenizer, request)
                if prompt is None:
                    outcomes[index] = ModelCallError("bad_request", f"request {request.item_id} has neither "
                                                     "messages nor a prompt")
                    continue
                sampling = request.sampling
                params.append(SamplingParams(
                    n=1, temperature=sampling.temperature, top_p=sampling.top_p if not sampling.greedy else 1.0,
                    max_tokens=sampling.max_tokens, stop=list(sampling.stop) or None,
                    seed=None if sampling.greedy else sample_seed(request)))
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
                    outcomes[index] = result if isinstance(result, ModelCallError) else self._response(result, per_item)
            return [o if o is not None else ModelCallError("bad_output", "no outcome") for o in outcomes]

    def _prompt(self, tokenizer: Any, request: Request) -> dict[str, Any] | None:
        """The same rendering as the hf adapter: chat template when there is one, else plain text."""
        if request.prompt is not None:
            return {"prompt": request.prompt}
        if not request.messages:
            return None
        if self._chat_template:
            text = tokenizer.apply_chat_template([dict(m) for m in request.messages], tokenize=False,
                                                 add_generation_prompt=True)
            return {"prompt_token_ids": list(tokenizer(text, add_special_tokens=False)["input_ids"])}
        return {"prompt": render_plain(request.messages)}

    def _response(self, result: Any, latency_s: float) -> Outcome:
        if not result.outputs:
            return ModelCallError("bad_output", "vLLM returned no completion")
        completion = result.outputs[0]
        reason = completion.finish_reason
        if reason not in ("stop", "length"):
            return ModelCallError("server", f"vLLM finished with '{reason}'")
        return Response(text=completion.text, finish_reason=reason,
                        prompt_tokens=len(result.prompt_token_ids or []) or None,
                        completion_tokens=len(completion.token_ids), cost_usd=None, latency_s=latency_s,
                        model_version=f"{self.model}@{self.ref.weights_hash[:12]}:{self.options.dtype}")
