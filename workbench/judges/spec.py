"""The judge spec: everything that decides a verdict, recorded with every verdict and hashed into
its cache key, so that changing the judge model, template text, sampling or sample count misses."""
from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field, model_validator

from workbench.judges.templates import TemplateSet, get_template
from workbench.models.base import Sampling
from workbench.secrets import redact


class JudgeSpec(BaseModel):
    """A judge. `model` is any registered name ("litellm/gpt-4o-mini", "hf/smollm2-135m-instruct").

    `template_hash` and `sampling` default to the template's current text hash and its default
    sampling; a spec saved with an older hash is refused when the template text has changed.
    `options` are adapter options (as for `get_model`); they are recorded but not hashed: what
    identifies the model (endpoint, weights) enters the key through the adapter's identity.
    `samples` > 1 asks each judgment several times (needs temperature > 0); `retries` is how many
    re-asks an unparseable answer gets before it is recorded as a judge error.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    model: str
    template: str = "chat-v1"
    template_hash: str = ""
    sampling: Sampling | None = None
    samples: int = Field(default=1, ge=1, le=50)
    retries: int = Field(default=2, ge=0, le=5)
    options: dict[str, Any] = Field(default_factory=dict)

    @model_validator(mode="before")
    @classmethod
    def _fill_from_template(cls, data: Any) -> Any:
        if not isinstance(data, dict):
            return data
        data = dict(data)
        template = get_template(data.get("template", "chat-v1"))
        current = template.text_hash()
        if data.get("template_hash") and data["template_hash"] != current:
            raise ValueError(f"template '{template.id}' has changed since this spec was made "
                             f"(hash {data['template_hash'][:12]} != current {current[:12]}); drop template_hash to use the current text")
        data["template_hash"] = current
        if data.get("sampling") is None:
            data["sampling"] = template.default_sampling
        return data

    @model_validator(mode="after")
    def _samples_need_sampling(self) -> "JudgeSpec":
        assert self.sampling is not None
        if self.samples > 1 and self.sampling.greedy:
            raise ValueError(f"samples={self.samples} with temperature 0 would ask the same question {self.samples} "
                             "times and get one cached answer; set sampling.temperature > 0")
        return self

    def template_set(self) -> TemplateSet:
        return get_template(self.template)

    def key_part(self) -> dict[str, Any]:
        """The part of every judge key that comes from the spec (adapter options excluded)."""
        return self.model_dump(mode="json", exclude={"options"})

    def record(self, adapter_identity: dict[str, Any]) -> dict[str, Any]:
        """What is stored with each verdict (`judgments.judge_spec_json`)."""
        options = {k: (redact(v) if isinstance(v, str) else v) for k, v in self.options.items()}
        return {**self.model_dump(mode="json"), "options": options, "adapter": adapter_identity}
