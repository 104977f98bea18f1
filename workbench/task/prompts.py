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
  tools                chat: function declarations sent with every item ([[tools]] tables, OpenAI form);
                       an item's own `tools` are added to them (an item's tool of the same name wins)
  tool_choice          chat: "auto", "none", "required" or {type = "function", function = {name = ...}}
  response_format      chat: a JSON Schema table the answer must follow (an item's own one wins)
  [[examples]]         few-shot examples: `output` (required; "" for a demonstration that only calls),
                       `tool_calls = [{name = ..., arguments = {...}}]` and `tool_result` (chat: the
                       demonstration calls tools; the result turn says what they returned, default
                       EXAMPLE_TOOL_RESULT), `match = {field = value, ...}`
                       (optional: the example is used only for items whose fields equal these),
                       and any other keys as template variables (fields an example does not give
                       are taken from the item, so examples matched on task can share its lookups)
  [lookup.<name>]      a variable chosen by item fields: `field = "task"` (or a list of fields)
                       and `values = { support_reply = "...", review_summary = "..." }` (nested
                       one level per field when `field` is a list)

History keys (optional; they say where a version came from and never change what is sent, so
they are left out of the digest):
  parent               the version this one was derived from, `name@version`
  author               a person, or the optimizer run that made it (`optimizer:<run id>`)
  note                 why it changed
  created              when, as a TOML offset date-time (`created = 2026-12-01T10:00:00Z`)
`diff_prompts(a, b)` (and `workbench prompts diff A B`) shows what changed between two versions.
"""
from __future__ import annotations

import datetime as dt
import difflib
import functools
import html
import json
import math
import re
import string
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable, Mapping

from workbench.errors import InputError, Problem
from workbench.hashing import content_hash
from workbench.items.fields import RESPONSE_FORMAT, TOOL_CHOICE, TOOLS, check_app_fields
from workbench.models.base import Request, Sampling
from workbench.project.lookup import bundled

BUNDLED_PROMPTS_DIR = bundled("prompts")
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")
HISTORY_KEYS = ("parent", "author", "note", "created")
_COMMON_KEYS = {"description", "mode", "stop", "max_tokens", "examples", "lookup", *HISTORY_KEYS}
_MODE_KEYS = {
    "chat": {"system", "user", "tools", "tool_choice", "response_format"},
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


EXAMPLE_TOOL_RESULT = "(the tool's result is not shown in this example)"


@dataclass(frozen=True)
class Example:
    """One few-shot example: template variables, the answer (text and, in chat, the calls it makes),
    and which items it applies to."""

    output: str
    variables: tuple[tuple[str, str], ...] = ()
    match: tuple[tuple[str, str], ...] = ()
    tool_calls: tuple[dict[str, Any], ...] = ()
    tool_result: str | None = None

    def answer_turns(self) -> list[dict[str, Any]]:
        """The assistant's turn (and the tool's, when it calls) of this demonstration."""
        if not self.tool_calls:
            return [{"role": "assistant", "content": self.output}]
        return [{"role": "assistant", "content": self.output or None, "tool_calls": [dict(c) for c in self.tool_calls]},
                {"role": "tool", "content": self.tool_result or EXAMPLE_TOOL_RESULT}]

    def applies_to(self, item: Mapping[str, Any]) -> bool:
        return all(_text(item.get(field)) == value for field, value in self.match)


@dataclass(frozen=True)
class Rendered:
    """A prompt filled in for one item: chat `messages` or a completion `prompt`, plus the prompt's
    own stop strings and length cap, and what an application sends beside them (tools, tool_choice,
    response_format: see `workbench.items.render`)."""

    messages: tuple[dict[str, Any], ...]
    prompt: str | None
    stop: tuple[str, ...]
    max_tokens: int | None
    tools: tuple[dict[str, Any], ...] = ()
    tool_choice: str | dict[str, Any] | None = None
    response_format: dict[str, Any] | None = None

    def to_request(self, item_id: str, sampling: Sampling, sample_index: int = 0) -> Request:
        """The model call for this item. Stop strings are the union (sampling's first); the length
        cap is the lower of the two, since both are limits."""
        stop = tuple(dict.fromkeys(sampling.stop + self.stop))
        max_tokens = sampling.max_tokens if self.max_tokens is None else min(sampling.max_tokens, self.max_tokens)
        if stop != sampling.stop or max_tokens != sampling.max_tokens:  # Sampling is frozen: share it when unchanged
            sampling = sampling.model_copy(update={"stop": stop, "max_tokens": max_tokens})
        return Request(item_id=item_id, messages=self.messages, prompt=self.prompt, sampling=sampling,
                       sample_index=sample_index, tools=self.tools, tool_choice=self.tool_choice,
                       response_format=self.response_format)


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
    tools: tuple[dict[str, Any], ...] = ()
    tool_choice: str | dict[str, Any] | None = None
    response_format: dict[str, Any] | None = None
    parent: str | None = None
    author: str | None = None
    note: str | None = None
    created: dt.datetime | None = None
    data: dict[str, Any] = field(default_factory=dict, compare=False, hash=False, repr=False)  # the parsed file

    @property
    def ref(self) -> str:
        return f"{self.name}@{self.version}"

    @property
    def placeholders(self) -> frozenset[str]:
        """Item fields the templates name directly (lookups excluded): what an example must give."""
        lookup_names = {lookup.name for lookup in self.lookups}
        return frozenset(name for text in self._templates() for _, name in _segments(text) if name) - lookup_names

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
                messages.extend(example.answer_turns())
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
    return prompt_from_data(data, name, version, file)


def prompt_from_data(data: Mapping[str, Any], name: str, version: str, source: str = "<memory>") -> PromptVersion:
    """Validate parsed prompt keys (as read from a TOML file) into a PromptVersion; the optimizer
    builds its trial prompts this way, under the same rules as files."""
    file = source
    data = dict(data)
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
    _check_history(data, bad)
    _check_app_keys(data, bad)
    if mode == "completion" and any(example.tool_calls for example in examples):
        bad("examples", "examples with tool_calls need a chat prompt (a completion prompt is one text)")
    if problems:
        raise InputError(problems)
    return PromptVersion(
        name=name, version=version, description=data["description"], mode=mode, source=file,
        digest=content_hash({k: v for k, v in data.items() if k not in HISTORY_KEYS}), system=data.get("system"),
        user=data.get("user"), template=data.get("template"), preamble=data.get("preamble"),
        target_delimiter=data.get("target_delimiter", " "), fewshot_delimiter=data.get("fewshot_delimiter", "\n\n"),
        stop=tuple(stop), max_tokens=max_tokens, examples=examples, lookups=lookups,
        tools=tuple(data.get("tools", ())), tool_choice=data.get("tool_choice"),
        response_format=data.get("response_format"), parent=data.get("parent"), author=data.get("author"), note=data.get("note"), created=data.get("created"),
        data=data,
    )


def _check_history(data: Mapping[str, Any], bad) -> None:
    parent = data.get("parent")
    if parent is not None and not (isinstance(parent, str) and _is_ref(parent)):
        bad("parent", f"parent must be a prompt reference 'name@version', got {parent!r}")
    for key in ("author", "note"):
        value = data.get(key)
        if value is not None and not (isinstance(value, str) and value.strip()):
            bad(key, f"'{key}' must be non-empty text")
    created = data.get("created")
    if created is not None and not (isinstance(created, dt.datetime) and created.tzinfo is not None):
        bad("created", "created must be a TOML offset date-time, e.g. created = 2026-12-01T10:00:00Z")


def _check_app_keys(data: Mapping[str, Any], bad) -> None:
    """A version's tools, tool_choice and response_format, under the same rules as an item's."""
    present = {key: data[key] for key in (TOOLS, TOOL_CHOICE, RESPONSE_FORMAT) if key in data}
    if not present:
        return
    for problem in check_app_fields(dict(present), "", 0):
        bad(problem.field, problem.message)


def _is_ref(ref: str) -> bool:
    name, sep, version = ref.partition("@")
    return bool(sep) and bool(_NAME.match(name)) and bool(_NAME.match(version))


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
        variables = {k: v for k, v in entry.items() if k not in ("output", "match", "tool_calls", "tool_result")}
        calls = _example_calls(entry.get("tool_calls", []), f"{where}.tool_calls", bad)
        tool_result = entry.get("tool_result")
        if tool_result is not None and not isinstance(tool_result, str):
            bad(f"{where}.tool_result", "tool_result must be text")
            tool_result = None
        for key, value in variables.items():
            if not isinstance(value, str):
                bad(f"{where}.{key}", "example variables must be text")
        examples.append(Example(
            output=entry["output"],
            variables=tuple((k, v) for k, v in variables.items() if isinstance(v, str)),
            match=tuple((k, _text(v)) for k, v in match.items()),
            tool_calls=calls, tool_result=tool_result,
        ))
    return tuple(examples)


def _example_calls(raw: Any, where: str, bad) -> tuple[dict[str, Any], ...]:
    if not isinstance(raw, list) or not all(isinstance(c, dict) and isinstance(c.get("name"), str) and c["name"]
                                            and isinstance(c.get("arguments", {}), dict) for c in raw):
        bad(where, "tool_calls must be a list of {name = \"...\", arguments = {...}}")
        return ()
    return tuple({"name": c["name"], "arguments": dict(c.get("arguments", {}))} for c in raw)


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


# --- writing and comparing versions ---------------------------------------------------------

_BARE_KEY = re.compile(r"^[A-Za-z0-9_-]+$")
_KEY_ORDER = ("description", *HISTORY_KEYS, "mode", "system", "user", "preamble", "template", "target_delimiter",
              "fewshot_delimiter", "stop", "max_tokens", "tool_choice")


def prompt_toml(data: Mapping[str, Any]) -> str:
    """Prompt keys as TOML text that `tomllib` reads back to the same values (history first, then
    the prompt, lookups, examples), so a saved version diffs cleanly against its parent."""
    ordered = {key: data[key] for key in _KEY_ORDER if key in data}
    ordered.update({key: value for key, value in data.items() if key not in ordered})
    lines: list[str] = []
    _write_table(lines, (), ordered)
    return "\n".join(lines).strip() + "\n"


def save_prompt(data: Mapping[str, Any], ref: str, prompts_dir: str | Path) -> Path:
    """Write a new version `<prompts_dir>/<name>/<version>.toml` after validating it; an existing
    file with other content is never overwritten (versions are immutable once used)."""
    if not _is_ref(ref):
        raise InputError(f"prompt reference '{ref}' must look like 'name@version'")
    name, _, version = ref.partition("@")
    text = prompt_toml(data)
    path = Path(prompts_dir) / name / f"{version}.toml"
    prompt_from_data(tomllib.loads(text), name, version, str(path))  # the same rules as any file
    if path.exists() and path.read_text(encoding="utf-8") != text:
        raise InputError(Problem(str(path), None, None, f"prompt {ref} already exists with other content; "
                                 "choose another version"))
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".toml.tmp")
    tmp.write_text(text, encoding="utf-8")
    tmp.replace(path)
    return path


def _write_table(lines: list[str], path: tuple[str, ...], table: Mapping[str, Any]) -> None:
    tables = {k: v for k, v in table.items() if isinstance(v, dict)}
    arrays = {k: v for k, v in table.items() if isinstance(v, list) and v and all(isinstance(x, dict) for x in v)}
    for key, value in table.items():
        if key not in tables and key not in arrays:
            lines.append(f"{_toml_key(key)} = {_toml_value(value)}")
    for key, value in tables.items():
        header = ".".join(_toml_key(k) for k in (*path, key))
        scalars = any(not isinstance(v, dict) for v in value.values())
        if scalars or not value:
            lines.extend(["", f"[{header}]"])
        _write_table(lines, (*path, key), value)
    for key, value in arrays.items():
        header = ".".join(_toml_key(k) for k in (*path, key))
        for entry in value:
            lines.extend(["", f"[[{header}]]"])
            _write_table(lines, (*path, key), entry)


def _toml_key(key: str) -> str:
    return key if _BARE_KEY.match(key) else json.dumps(key, ensure_ascii=False)


def _toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return repr(value)
    if isinstance(value, dt.datetime):
        return value.isoformat().replace("+00:00", "Z")
    if isinstance(value, str):
        return _toml_string(value)
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
    raise TypeError(f"cannot write {type(value).__name__} as a prompt value")


def _toml_string(text: str) -> str:
    """A multi-line literal string for readable multi-line text, else a basic string (JSON's
    escapes are TOML's)."""
    plain = all(ch in "\n\t" or ord(ch) >= 32 for ch in text) and "\r" not in text and "\x7f" not in text
    if "\n" in text and text.strip() and plain and "'''" not in text and not text.endswith("'"):
        return "'''\n" + text + "'''"
    return json.dumps(text, ensure_ascii=False)


@dataclass(frozen=True)
class PromptDiff:
    """What changed from version `a` to version `b`: the keys, and a line diff of both files as
    `prompt_toml` writes them (so formatting alone never shows as a change)."""

    a: PromptVersion
    b: PromptVersion
    changed: tuple[str, ...]  # prompt keys (history keys excluded) whose values differ
    lines_a: tuple[str, ...]
    lines_b: tuple[str, ...]

    @property
    def same_prompt(self) -> bool:
        """Nothing the model is sent differs (history may)."""
        return self.a.digest == self.b.digest

    def summary(self) -> str:
        counts = f"examples {len(self.a.examples)} -> {len(self.b.examples)}" \
            if len(self.a.examples) != len(self.b.examples) else ""
        what = ", ".join(self.changed) if self.changed else "nothing sent to the model"
        return f"{self.a.ref} -> {self.b.ref}: changed {what}" + (f" ({counts})" if counts else "")

    def history(self, version: PromptVersion) -> str:
        parts = [f"parent {version.parent}" if version.parent else "",
                 f"by {version.author}" if version.author else "",
                 f"created {version.created.isoformat()}" if version.created else "",
                 f"note: {version.note}" if version.note else ""]
        return f"{version.ref}: " + ("; ".join(p for p in parts if p) or "no history recorded")

    def text(self) -> str:
        body = difflib.unified_diff(self.lines_a, self.lines_b, fromfile=self.a.ref, tofile=self.b.ref, lineterm="")
        return "\n".join([self.summary(), self.history(self.a), self.history(self.b), *body]) + "\n"

    def _repr_html_(self) -> str:
        """Side by side, changes marked; static HTML (difflib escapes the text), so it survives export."""
        table = difflib.HtmlDiff(wrapcolumn=70).make_table(list(self.lines_a), list(self.lines_b), self.a.ref,
                                                            self.b.ref, context=True, numlines=2)
        head = "".join(f"<div>{html.escape(line)}</div>" for line in
                       (self.summary(), self.history(self.a), self.history(self.b)))
        style = ("<style>table.diff{font-family:monospace;font-size:12px}.diff_add{background:#cfc}"
                 ".diff_chg{background:#ffa}.diff_sub{background:#fcc}</style>")
        return f"{style}<div class='prompt-diff'>{head}{table}</div>"


def diff_prompts(a: PromptVersion, b: PromptVersion) -> PromptDiff:
    """What differs between two loaded prompt versions."""
    keys = [k for k in dict.fromkeys([*a.data, *b.data]) if k not in HISTORY_KEYS]
    changed = tuple(k for k in keys if a.data.get(k) != b.data.get(k))
    return PromptDiff(a, b, changed, tuple(prompt_toml(a.data).splitlines()), tuple(prompt_toml(b.data).splitlines()))
