"""Per-model adapter options: `[model_options."<model>"]` in params.toml, `--model-options FILE`.

Why a module of its own: the options go into params files, the report notebook's parameters, every
run's recorded spec and the manifest, so they are checked once, here, before a store is opened or a
call is made: by the model's own adapter options model (an unknown option or a wrong type is an
error, never ignored), for secrets (keys come only from the environment, through `api_key_env`), and
for endpoints (an `api_base` is an http(s) base URL without credentials, since it is recorded).
Every message names `model_options."<model>".<field>` and never repeats the value.
"""
from __future__ import annotations

import json
import re
import tomllib
from pathlib import Path
from typing import Any, Iterator, Mapping, Sequence

from pydantic import ValidationError

from workbench.errors import InputError
from workbench.models import adapter_class, split_name
from workbench.secrets import endpoint_problem, redact

# Option (or header) names that hold a credential: `api_key`, `token`, `X-Api-Key`, `Authorization`...
# (and not `api_key_env` or `input_cost_per_token`).
_SECRET_NAME = re.compile(
    r"^(x[_-])?((api|access|auth|bearer|refresh|session|subscription|client)[_-]?)?"
    r"(key|token|secret|password|passwd|pwd|credentials?)$"
    r"|^(proxy[_-])?authorization$|^cookie$|^ocp-apim-subscription-key$", re.I)


def field_name(model: str, path: Sequence[str | int] = ()) -> str:
    """`model_options."litellm/m".deployments[0].api_base`: how messages name an option."""
    text = f'model_options."{model}"'
    for part in path:
        text += f"[{part}]" if isinstance(part, int) else f".{part}"
    return text


def load_model_options(path: str | Path) -> dict[str, dict[str, Any]]:
    """The table of a `--model-options` file (.toml or .json): model name -> options, written either
    at the top level or under `model_options` (as in params.toml)."""
    path = Path(path)
    if not path.is_file():
        raise InputError(f"--model-options {path}: file not found")
    try:
        text = path.read_text(encoding="utf-8")
        if path.suffix.lower() == ".json":
            data = json.loads(text)
        else:
            data = tomllib.loads(text)
    except (ValueError, UnicodeDecodeError) as exc:  # tomllib's and json's errors say line and column
        kind = "JSON" if path.suffix.lower() == ".json" else "TOML"
        raise InputError(f"--model-options {path}: not valid {kind} ({exc})") from None
    if isinstance(data, dict) and set(data) == {"model_options"}:
        data = data["model_options"]
    if not isinstance(data, dict) or not all(isinstance(v, dict) for v in data.values()):
        raise InputError(f"--model-options {path}: must be a table of model name -> options, e.g. "
                         '[model_options."litellm/openai/my-model"]')
    return data


def merge(base: Mapping[str, Mapping[str, Any]], over: Mapping[str, Mapping[str, Any]]) -> dict[str, dict[str, Any]]:
    """`over` on top of `base`, option by option within each model (a file given on the command line
    on top of params.toml)."""
    merged = {model: dict(options) for model, options in base.items()}
    for model, options in over.items():
        merged[model] = {**merged.get(model, {}), **options}
    return merged


def problems(options: Mapping[str, Any], models: Sequence[str], source: str | None = None) -> list[str]:
    """Everything wrong with `options` for a run of `models` (empty when all is well)."""
    where = f" ({source})" if source else ""
    found: list[str] = []
    for model, given in options.items():
        name = field_name(model)
        if model not in models:
            found.append(f"parameter '{name}'{where}: {model} is not a model of this run "
                         f"(models: {', '.join(dict.fromkeys(models)) or 'none'})")
            continue
        if not isinstance(given, dict):
            found.append(f"parameter '{name}'{where}: must be a table of options")
            continue
        found.extend(f"parameter '{field_name(model, path)}'{where}: {message}"
                     for path, message in _option_problems(model, given))
    return found


def check(options: Mapping[str, Any], models: Sequence[str], source: str | None = None) -> None:
    """Raise one InputError listing every problem of `options` (see `problems`)."""
    found = problems(options, models, source)
    if found:
        raise InputError(found)


def _option_problems(model: str, given: dict[str, Any]) -> list[tuple[tuple[str | int, ...], str]]:
    found = list(_secrets(given)) + list(_endpoints(given))
    reported = {path for path, _ in found}
    try:
        provider, _ = split_name(model)
    except InputError:
        return found  # the model name itself is reported by the config's own checks
    options_model = adapter_class(provider).options_model
    try:
        options_model(**given)
    except ValidationError as exc:
        for error in exc.errors():
            path = tuple(error["loc"])
            if path not in reported:  # one message per field: a secret is not also "not permitted"
                known = list(options_model.model_fields) if len(path) == 1 else None
                found.append((path, _message(error, known)))
    return found


def _message(error: Mapping[str, Any], known: list[str] | None) -> str:
    """pydantic's message, without the value (it may be a key pasted in the wrong place)."""
    if error["type"] == "extra_forbidden":
        return f"unknown option (known: {', '.join(known)})" if known else "unknown option"
    return str(error["msg"]).removeprefix("Value error, ")


def _walk(value: Any, path: tuple[str | int, ...] = ()) -> Iterator[tuple[tuple[str | int, ...], Any]]:
    yield path, value
    if isinstance(value, dict):
        for key, item in value.items():
            yield from _walk(item, (*path, str(key)))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from _walk(item, (*path, index))


def _secrets(given: dict[str, Any]) -> Iterator[tuple[tuple[str | int, ...], str]]:
    """Keys written into the options: by name (`api_key`, an Authorization header) or by shape."""
    for path, value in _walk(given):
        last = path[-1] if path else None
        if isinstance(last, str) and _SECRET_NAME.search(last) and value not in (None, ""):
            yield path, ("a secret cannot be written in the options (they are recorded with every run): put it in "
                         "an environment variable and name that variable in api_key_env")
        elif isinstance(value, str) and not _is_api_base(path) and redact(value) != value:
            yield path, ("looks like a secret, which cannot be written in the options: put it in an environment "
                         "variable and name that variable in api_key_env")


def _is_api_base(path: tuple[str | int, ...]) -> bool:
    return bool(path) and path[-1] == "api_base"


def _endpoints(given: dict[str, Any]) -> Iterator[tuple[tuple[str | int, ...], str]]:
    """Every api_base: what the global `api_base` must be (an http(s) URL with a host), and, since
    options are recorded with every run, no credentials or query string in it."""
    for path, value in _walk(given):
        if not _is_api_base(path) or not isinstance(value, str):
            continue  # not an api_base, or unset, or of a wrong type (the options model names that)
        problem = endpoint_problem(value, recorded=True)
        if problem:
            yield path, problem
