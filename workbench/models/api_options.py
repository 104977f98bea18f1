"""Options shared by the HTTP API adapters (`litellm/`, `openai/`), and the two rules they share:
keys are read from the environment by variable NAME, and prices per token price a call."""
from __future__ import annotations

import os
import re

from pydantic import BaseModel, ConfigDict, field_validator, model_validator

from workbench.errors import ModelCallError
from workbench.secrets import register_key_variable

_ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


class ApiOptions(BaseModel):
    model_config = ConfigDict(extra="forbid")

    api_base: str | None = None  # e.g. http://127.0.0.1:8000/v1 for a vLLM or llama.cpp server
    api_key_env: str | None = None  # NAME of the environment variable that holds the key
    extra_headers: dict[str, str] | None = None
    input_cost_per_token: float | None = None  # USD; overrides any price list
    output_cost_per_token: float | None = None

    @field_validator("api_key_env")
    @classmethod
    def _is_a_name(cls, value: str | None) -> str | None:
        # The message never repeats the value: it may be a key pasted by mistake.
        if value is not None and not _ENV_NAME.match(value):
            raise ValueError("must be the NAME of an environment variable (e.g. OPENAI_API_KEY), not a key")
        if value is not None:
            register_key_variable(value)  # its value is redacted wherever it is echoed, whatever its name
        return value

    @model_validator(mode="after")
    def _prices_together(self) -> "ApiOptions":
        if (self.input_cost_per_token is None) != (self.output_cost_per_token is None):
            raise ValueError("give both input_cost_per_token and output_cost_per_token, or neither")
        return self

    @property
    def prices(self) -> tuple[float, float] | None:
        """(input, output) USD per token, when given."""
        if self.input_cost_per_token is None or self.output_cost_per_token is None:
            return None
        return self.input_cost_per_token, self.output_cost_per_token


def token_cost(prices: tuple[float, float] | None, prompt_tokens: int | None,
               completion_tokens: int | None) -> float | None:
    """USD for a call's tokens; None (unknown, never 0) without prices or token counts."""
    if prices is None or prompt_tokens is None or completion_tokens is None:
        return None
    return prompt_tokens * prices[0] + completion_tokens * prices[1]


def key_from_env(name: str, why: str = "named by api_key_env") -> str:
    """The key in environment variable `name`; an auth error (naming the variable and who asked
    for it, never a value) when it is unset, so the call fails per item without reaching the server."""
    register_key_variable(name)
    key = os.environ.get(name)
    if not key:
        raise ModelCallError("auth", f"{name} is not set ({why})", sent=False)
    return key
