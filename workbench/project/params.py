"""What every parameter object shares (the report's `MigrationConfig`, the drift monitor's and the
optimizer's): strict validation with messages that name the parameter, parameters files, and paths
that resolve in the user's project. One copy, so the three commands read parameters the same way."""
from __future__ import annotations

import json
import tomllib
from pathlib import Path
from typing import Any, Mapping, TypeVar

from pydantic import BaseModel, ConfigDict, ValidationError

from workbench.errors import InputError
from workbench.project.lookup import project_root, resolve
from workbench.secrets import redact

P = TypeVar("P", bound="ProjectParameters")


class ProjectParameters(BaseModel):
    """Base of the parameter objects: unknown fields and wrong types are errors, relative paths
    resolve against `project_dir` (which each subclass declares as a parameter)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    @classmethod
    def from_parameters(cls: type[P], params: Mapping[str, Any]) -> P:
        """Build from notebook parameters, naming the parameter and the problem on bad input (a value
        that holds a secret is redacted: users paste keys into the wrong place)."""
        try:
            return cls(**params)
        except ValidationError as exc:
            raise InputError(validation_problems(exc)) from None

    @property
    def base_dir(self) -> Path:
        folder = getattr(self, "project_dir", None)
        return Path(folder).resolve() if folder else project_root()

    def path(self, value: str) -> Path:
        return resolve(value, self.base_dir)


def validation_problems(exc: ValidationError) -> list[str]:
    problems = []
    for err in exc.errors():
        name = ".".join(str(p) for p in err["loc"])
        message = err["msg"].removeprefix("Value error, ")
        problems.append(f"parameter '{name}': {message} (got {redact(repr(err.get('input')))})" if name else message)
    return problems


def load_params_file(path: str | Path) -> dict[str, Any]:
    """Parameters from a .toml or .json file (a missing or unparsable file names itself)."""
    path = Path(path)
    if not path.is_file():
        raise InputError(f"{path}: parameters file not found")
    try:
        text = path.read_text(encoding="utf-8")
        if path.suffix == ".toml":
            return tomllib.loads(text)
        data = json.loads(text)
    except (ValueError, UnicodeDecodeError) as exc:
        raise InputError(f"{path}: cannot parse parameters ({exc})") from None
    if not isinstance(data, dict):
        raise InputError(f"{path}: the top level must be an object of parameters")
    return data


def build(cls: type[P], params_file: str | Path | None = None, overrides: Mapping[str, Any] | None = None,
          base: str | Path | None = None) -> P:
    """Defaults, then the parameters file, then overrides (`-p` and flags). Relative paths resolve
    against the file's folder, else `base` (the current folder)."""
    given = dict(load_params_file(params_file)) if params_file else {}
    given.update(overrides or {})
    unknown = sorted(set(given) - set(cls.model_fields))
    if unknown:
        raise InputError(f"unknown parameter(s): {', '.join(unknown)} (known: {', '.join(cls.model_fields)})")
    if not given.get("project_dir"):
        folder = Path(params_file).parent if params_file else Path(base or Path.cwd())
        given["project_dir"] = str(folder.resolve())
    return cls.from_parameters(given)


def toml_value(value: Any) -> str:
    """A TOML literal for the parameter types the config uses."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return repr(value)
    if isinstance(value, str):
        return json.dumps(value, ensure_ascii=False)
    if isinstance(value, list):
        return "[" + ", ".join(toml_value(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{k} = {toml_value(v)}" for k, v in value.items()) + "}"
    raise TypeError(f"no TOML literal for {value!r}")


def parse_cli_value(text: str) -> Any:
    """`-p NAME VALUE`: JSON when it parses (numbers, lists, null, true), else the plain string."""
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        return text
