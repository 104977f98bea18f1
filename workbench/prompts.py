"""Named, versioned prompt templates stored as TOML files: `<prompts_dir>/<name>/<version>.toml`.

A prompt version is part of the experiment ("model B with prompt v2"), so it lives in a file under
version control, is referred to as `name@version`, and is validated strictly: an unknown key or a
malformed placeholder is an error naming the file, never silently ignored.

Placeholders are `str.format` style, `{field}`, where `field` is an item column (input, language,
...) or a `[lookup.<name>]` variable. Only plain names are allowed (no `{x.attr}`, `{x[0]}`,
`{x!r}` or `{x:>10}`): templates are substituted, never evaluated. Write a literal brace by
doubling it: `{{"sentiment": "positive"}}` renders as `{"sentiment": "positive"}`. Item values
are inserted verbatim, so braces inside the data need no escaping.

File keys (see resources/data/README.md for examples):
  description          text shown in listings (required)
  mode                 "chat" or "completion" (required)
  system, user         chat: optional system message and the required user message template
  template             completion: the prompt for one item, ending where the answer begins
  preamble             completion: optional text placed before the examples
  target_delimiter     completion: between an example's template and its output (default " ")
  fewshot_delimiter    completion: between preamble, examples and the item (default "\n\n")
  stop                 optional list of stop strings
  max_tokens           optional cap on the answer length
  [[examples]]         few-shot examples: `output` (required), `match = {field = value, ...}`
                       (optional: the example is used only for items whose fields equal these),
                       and any other keys as template variables (fields an example does not give
                       are taken from the item, so examples matched on task can share its lookups)
  [lookup.<name>]      a variable chosen by item fields: `field = "task"` (or a list of fields)
                       and `values = { support_reply = "...", review_summary = "..." }` (nested
                       one level per field when `field` is a list)
"""
from __future__ import annotations

import functools
import math
import re
import string
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable, Mapping

from workbench.errors import InputError, Problem
from workbench.hashing import content_hash
from workbench.models.base import Request, Sampling

BUNDLED_PROMPTS_DIR = Path(__file__).resolve().parent / "resources" / "prompts"
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")
_COMMON_KEYS = {"description", "mode", "stop", "max_tokens", "examples", "lookup"}
_MODE_KEYS = {
    "chat": {"system", "user"},
    "completion": {"template", "preamble", "target_delimiter", "fewshot_delimiter"},
}

Segments = tuple[tuple[str, str | None], ...]  # (literal text, placeholder name or None)


@dataclass(frozen=True)
class Lookup:
    """A variable whose text depends on item fields, e.g. the instruction for the item's task."""

    name: str
    fields: tuple[str, ...]
    cases: tuple[tuple[tuple[str, ...], str], ...]  # (values of `fields`, text)

    def resolve(self, context: Mapping[str, Any]) -> str | None:
        key = tuple(_text(context.get(field)) for field in self.fields)
        return next((text for values, text in self.cases if values == key), None)


@dataclass(frozen=True)
class Example:
    """One few-shot example: template variables, the answer, and which items it applies to."""

    output: str
    variables: tuple[tuple[str, str], ...] = ()
    match: tuple[tuple[str, str], ...] = ()

    def applies_to(self, item: Mapping[str, Any]) -> bool:
        return all(_text(item.get(field)) == value for field, value in self.match)


@dataclass(frozen=True)
class Rendered:
    """A prompt filled in for one item: chat `messages` or a completion `prompt`, plus the prompt's
    own stop strings and length cap."""

    messages: tuple[dict[str, str], ...]
    prompt: str | None
    stop: tuple[str, ...]
    max_tokens: int | None

    def to_request(self, item_id: str, sampling: Sampling, sample_index: int = 0) -> Request:
        """The model call for this item. Stop strings are the union (sampling's first); the length
        cap is the lower of the two, since both are limits."""
        stop = tuple(dict.fromkeys(sampling.stop + self.stop))
        max_tokens = sampling.max_tokens if self.max_tokens is None else min(sampling.max_tokens, self.max_tokens)
        sampling = sampling.model_copy(update={"stop": stop, "max_tokens": max_tokens})
        return Request(item_id=item_id, messages=self.messages, prompt=self.prompt,
                       sampling=sampling, sample_index=sample_index)


@dataclass(frozen=True)
class PromptVersion:
    """One prompt version loaded from `<name>/<version>.toml`; render it per item."""

    name: str
    version: str
    description: str
    mode: str  # "chat" | "completion"
    source: str
    digest: str  # content hash of the parsed file: changes whenever the prompt does
    system: str | None = None
    user: str | None = None
    template: str | None = None
    preamble: str | None = None
    target_delimiter: str = " "
    fewshot_delimiter: str = "\n\n"
    stop: tuple[str, ...] = ()
    max_tokens: int | None = None
    examples: tuple[Example, ...] = ()
    lookups: tuple[Lookup, ...] = ()

    @property
    def ref(self) -> str:
        return f"{self.name}@{self.version}"

    @property
    def variables(self) -> frozenset[str]:
        """Item fields the prompt reads: placeholders that are not lookups, lookup keys and the
        fields examples are matched on (a runner can check them before any model call)."""
        lookup_names = {lookup.name for lookup in self.lookups}
        used = {name for text in self._templates() for _, name in _segments(text) if name}
        keys = {field for lookup in self.lookups for field in lookup.fields}
        matched = {field for example in self.examples for field, _ in example.match}
        return frozenset((used - lookup_names) | keys | matched)

    def render(self, item: Mapping[str, Any]) -> Rendered:
        """Fill the prompt for one item (a dict or a DataFrame row). A variable the item lacks is
        an InputError naming the variable, this prompt and the item."""
        problems: list[Problem] = []
        context = self._context(item, problems)
        examples = [example for example in self.examples if example.applies_to(item)]
        example_contexts = [self._context({**item, **dict(ex.match), **dict(ex.variables)}, problems)
                            for ex in examples]
        if self.mode == "chat":
            messages: list[dict[str, str]] = []
            if self.system is not None:
                messages.append({"role": "system", "content": self._fill(self.system, context, item, problems)})
            for example, example_context in zip(examples, example_contexts):
                messages.append({"role": "user", "content": self._fill(self.user, example_context, item, problems)})
                messages.append({"role": "assistant", "content": example.output})
            messages.append({"role": "user", "content": self._fill(self.user, context, item, problems)})
            result = Rendered(tuple(messages), None, self.stop, self.max_tokens)
        else:
            parts = [] if self.preamble is None else [self._fill(self.preamble, context, item, problems)]
            for example, example_context in zip(examples, example_contexts):
                parts.append(self._fill(self.template, example_context, item, problems)
                             + self.target_delimiter + example.output)
            parts.append(self._fill(self.template, context, item, problems))
            result = Rendered((), self.fewshot_delimiter.join(parts), self.stop, self.max_tokens)
        if problems:
            raise InputError(list(dict.fromkeys(problems)))
        return result

    def render_many(self, items: Iterable[Mapping[str, Any]]) -> list[Rendered]:
        """Render every item, or raise ONE InputError listing every item that cannot be rendered
        (so a bad data set fails before any model call, with the whole list to fix)."""
        rendered: list[Rendered] = []
        problems: list[Problem] = []
        for item in items:
            try:
                rendered.append(self.render(item))
            except InputError as error:
                problems.extend(error.problems)
        if problems:
            raise InputError(problems)
        return rendered

    def _templates(self) -> list[str]:
        return [text for text in (self.system, self.user, self.template, self.preamble) if text is not None]

    def _context(self, item: Mapping[str, Any], problems: list[Problem]) -> dict[str, Any]:
        context = dict(item)
        for lookup in self.lookups:
            text = lookup.resolve(item)
            if text is None:
                key = ", ".join(f"{field}={_text(item.get(field))!r}" for field in lookup.fields)
                problems.append(self._problem(item, lookup.name, f"lookup '{lookup.name}' has no value for {key}"))
            context[lookup.name] = text
        return context

    def _fill(self, text: str, context: Mapping[str, Any], item: Mapping[str, Any], problems: list[Problem]) -> str:
        out: list[str] = []
        for literal, name in _segments(text):
            out.append(literal)
            if name is None:
                continue
            value = _text(context.get(name))
            if value is None:
                if name not in {lookup.name for lookup in self.lookups}:  # lookups report their own miss
                    problems.append(self._problem(item, name, f"item has no value for variable '{name}'"))
                continue
            out.append(value)
        return "".join(out)

    def _problem(self, item: Mapping[str, Any], variable: str, message: str) -> Problem:
        return Problem(self.source, None, variable, f"prompt {self.ref}, item '{_text(item.get('item_id'))}': {message}")


def prompt_roots(prompts_dir: str | Path | None = None) -> list[Path]:
    """Where prompt versions are looked up, first match wins: the project's folder (when given and
    present), then the versions bundled with the package (so `workbench init` projects and the demo
    find `support_chat@v1` without copying it)."""
    roots = [Path(prompts_dir)] if prompts_dir is not None and Path(prompts_dir).is_dir() else []
    return [*roots, BUNDLED_PROMPTS_DIR]


def load_prompt(ref: str, prompts_dir: str | Path | None = None) -> PromptVersion:
    """Load `name@version` from `<root>/<name>/<version>.toml`, searching `prompt_roots(prompts_dir)`.
    The version is required: a run must say exactly which prompt it used."""
    roots = prompt_roots(prompts_dir)
    where = str(prompts_dir or roots[0])
    name, sep, version = ref.partition("@")
    if not sep or not _NAME.match(name) or not _NAME.match(version):
        raise InputError(Problem(where, None, None, f"prompt reference '{ref}' must look like "
                                 f"'name@version'; available: {', '.join(list_prompts(prompts_dir)) or 'none'}"))
    for root in roots:
        path = root / name / f"{version}.toml"
        if path.is_file():
            return _parse(path, name, version)
    raise InputError(Problem(str(Path(where) / name / f"{version}.toml"), None, None, f"no prompt '{ref}'; available: "
                             f"{', '.join(list_prompts(prompts_dir)) or 'none'}"))


def list_prompts(prompts_dir: str | Path | None = None) -> list[str]:
    """Every `name@version` in the project's folder and the bundled ones, sorted by name then version
    (v2 before v10)."""
    refs = {(path.parent.name, path.stem) for root in prompt_roots(prompts_dir) for path in root.glob("*/*.toml")
            if _NAME.match(path.parent.name) and _NAME.match(path.stem)}
    return [f"{name}@{version}" for name, version in sorted(refs, key=lambda r: (r[0], _natural(r[1])))]


# --- parsing and validation ----------------------------------------------------------------

def _parse(path: Path, name: str, version: str) -> PromptVersion:
    file = str(path)
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except UnicodeDecodeError as exc:
        raise InputError(Problem(file, None, None, f"not valid UTF-8 (byte {exc.start})")) from None
    except tomllib.TOMLDecodeError as exc:
        raise InputError(Problem(file, None, None, f"not valid TOML: {exc}")) from None
    problems: list[Problem] = []

    def bad(key: str | None, message: str) -> None:
        problems.append(Problem(file, None, key, message))

    mode = data.get("mode")
    if mode not in _MODE_KEYS:
        bad("mode", f"mode must be 'chat' or 'completion', got {mode!r}")
    allowed = _COMMON_KEYS | (_MODE_KEYS.get(mode, set()) if isinstance(mode, str) else set())
    for key in data:
        if key not in allowed:
            other = next((m for m, keys in _MODE_KEYS.items() if key in keys), None)
            bad(key, f"key '{key}' only applies to mode '{other}'" if other else f"unknown key '{key}'; "
                f"allowed: {', '.join(sorted(allowed))}")
    if not isinstance(data.get("description"), str):
        bad("description", "description (text) is required")
    required = {"chat": "user", "completion": "template"}.get(mode)
    if required and not isinstance(data.get(required), str):
        bad(required, f"'{required}' (text) is required in mode '{mode}'")
    for key in ("system", "user", "template", "preamble", "target_delimiter", "fewshot_delimiter"):
        if key in data and not isinstance(data[key], str):
            bad(key, f"'{key}' must be text")
        elif key in data and key not in ("target_delimiter", "fewshot_delimiter"):
            try:
                _segments(data[key])
            except ValueError as exc:
                bad(key, f"bad placeholder: {exc} (write {{{{ and }}}} for literal braces)")
    stop = data.get("stop", [])
    if not isinstance(stop, list) or not all(isinstance(s, str) and s for s in stop):
        bad("stop", "stop must be a list of non-empty strings")
    max_tokens = data.get("max_tokens")
    if max_tokens is not None and (isinstance(max_tokens, bool) or not isinstance(max_tokens, int) or max_tokens < 1):
        bad("max_tokens", "max_tokens must be a positive integer")
    examples = _parse_examples(data.get("examples", []), bad)
    lookups = _parse_lookups(data.get("lookup", {}), bad)
    if problems:
        raise InputError(problems)
    return PromptVersion(
        name=name, version=version, description=data["description"], mode=mode, source=file,
        digest=content_hash(data), system=data.get("system"), user=data.get("user"),
        template=data.get("template"), preamble=data.get("preamble"),
        target_delimiter=data.get("target_delimiter", " "), fewshot_delimiter=data.get("fewshot_delimiter", "\n\n"),
        stop=tuple(stop), max_tokens=max_tokens, examples=examples, lookups=lookups,
    )


def _parse_examples(raw: Any, bad) -> tuple[Example, ...]:
    if not isinstance(raw, list):
        bad("examples", "examples must be an array of tables ([[examples]])")
        return ()
    examples = []
    for number, entry in enumerate(raw, start=1):
        where = f"examples[{number}]"
        if not isinstance(entry, dict) or not isinstance(entry.get("output"), str):
            bad(where, "each example needs an 'output' (text)")
            continue
        match = entry.get("match", {})
        if not isinstance(match, dict) or not all(isinstance(v, (str, int, bool)) for v in match.values()):
            bad(f"{where}.match", "match must be a table of field = value")
            match = {}
        variables = {k: v for k, v in entry.items() if k not in ("output", "match")}
        for key, value in variables.items():
            if not isinstance(value, str):
                bad(f"{where}.{key}", "example variables must be text")
        examples.append(Example(
            output=entry["output"],
            variables=tuple((k, v) for k, v in variables.items() if isinstance(v, str)),
            match=tuple((k, _text(v)) for k, v in match.items()),
        ))
    return tuple(examples)


def _parse_lookups(raw: Any, bad) -> tuple[Lookup, ...]:
    if not isinstance(raw, dict):
        bad("lookup", "lookup must be a table of [lookup.<name>] tables")
        return ()
    lookups = []
    for name, spec in raw.items():
        where = f"lookup.{name}"
        if not name.isidentifier():
            bad(where, f"lookup name '{name}' must be a plain identifier (it is used as {{{name}}})")
            continue
        if not isinstance(spec, dict) or not {"field", "values"} <= set(spec):
            bad(where, "a lookup needs 'field' and 'values'")
            continue
        if set(spec) - {"field", "values"}:
            bad(where, f"unknown key(s) {', '.join(sorted(set(spec) - {'field', 'values'}))}; "
                "a lookup has only 'field' and 'values'")
            continue
        fields = (spec["field"],) if isinstance(spec["field"], str) else spec["field"]
        if not isinstance(fields, (list, tuple)) or not fields or not all(isinstance(f, str) for f in fields):
            bad(f"{where}.field", "field must be a field name or a list of them")
            continue
        cases: list[tuple[tuple[str, ...], str]] = []
        if not _flatten_cases(spec["values"], len(fields), (), cases):
            bad(f"{where}.values", f"values must be a table nested {len(fields)} level(s) deep with text leaves")
            continue
        lookups.append(Lookup(name=name, fields=tuple(fields), cases=tuple(cases)))
    return tuple(lookups)


def _flatten_cases(values: Any, depth: int, prefix: tuple[str, ...], out: list) -> bool:
    if not isinstance(values, dict) or not values:
        return False
    for key, value in values.items():
        if depth == 1:
            if not isinstance(value, str):
                return False
            out.append((prefix + (key,), value))
        elif not _flatten_cases(value, depth - 1, prefix + (key,), out):
            return False
    return True


@functools.lru_cache(maxsize=256)
def _segments(text: str) -> Segments:
    """Split a template into literal text and placeholder names; ValueError for anything but a plain
    `{name}` (attribute access, indexing, conversions and format specs are refused)."""
    segments = []
    for literal, name, spec, conversion in string.Formatter().parse(text):
        if name is not None:
            if not name.isidentifier() or spec or conversion:
                raw = "{" + name + (f"!{conversion}" if conversion else "") + (f":{spec}" if spec else "") + "}"
                raise ValueError(f"placeholder {raw} is not a plain {{name}}")
        segments.append((literal, name))
    return tuple(segments)


def _text(value: Any) -> str | None:
    """An item value as prompt text; None when missing (None or NaN)."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return None
    if type(value).__name__ == "NAType":  # pandas.NA without importing pandas
        return None
    if isinstance(value, bool):
        return str(value).lower()  # matches TOML's true/false in `match` and lookup keys
    return str(value)


def _natural(text: str) -> list:
    return [(0, int(part), "") if part.isdigit() else (1, 0, part) for part in re.split(r"(\d+)", text) if part]
