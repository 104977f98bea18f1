"""Tool calls scored against the calls an item accepts, with BFCL's rules.

`check_item` gives one item's verdict: is the response right (every expected call made, none extra,
parallel calls in any order), do the tool names, argument keys and argument values match, did it
call no tool where none applies (irrelevance, `expected_calls == []`) or some tool where one does
(relevance, `"any"`), are the arguments valid against the declared JSON Schema, and if wrong, the
kind of error (`ERROR_KINDS`). The per-call check is the rule set of the Berkeley Function Calling
Leaderboard's AST checker (`bfcl_eval/eval_checker/ast_eval/ast_checker.py`, Apache-2.0), so the
verdicts equal the leaderboard's on its Python categories (tests/metrics/test_tool_calls_bfcl.py runs
the checker itself beside this module):
- a value must have the declared type, exactly (`"5"` is not 5, `true` is not 1), except that an
  integer is accepted for a float; a declared array's items are typed one level deep;
- strings are compared after dropping spaces and `,./-_*^` and lower-casing (`"New York, NY"` ==
  `"new york ny"`), in lists and in one level of dictionaries too;
- every argument the declaration requires must be given, every argument given must be declared and
  accepted, and an accepted argument may be left out only when `""` is among its accepted values;
- with several expected calls the number of calls must match, and each expected call, in order,
  takes the first made call not yet taken that fits it (so parallel calls may come in any order).
Where an item declares no tools, argument types come from the accepted values. The plain expected
form (`{"name", "arguments"}`) is read as BFCL's with one accepted value per argument.

One deliberate difference: BFCL counts a call whose arguments are not JSON as no call at all (its
decoder fails), so it passes an irrelevance item; here any call is a call ("call when none applies"),
because an application would try to run it. Unparseable calls fail every other check too, as in BFCL.

Everything is pure and per row (10k answers in about a second of CPU, `bench/bench_tool_scoring.py`).
`METRICS` exposes the verdict's parts as metrics that read `tool_calls`, `expected_calls` and `tools`
(one pass per batch, shared by all of them); `verdict_frame` gives the verdict per response for
tables and examples; `compare_calls` compares a candidate's calls with the baseline's where no call
is expected (production logs), for `workbench.metrics.behaviour`.
"""
from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass
from typing import Any, Mapping, Sequence

from workbench.items.fields import ANY_CALL, json_schema
from workbench.items.tool_calls import OMITTED, ToolCall, calls_from_json, function_of
from workbench.metrics.base import Metric

WRONG_TOOL, MISSING_ARGUMENT, UNEXPECTED_ARGUMENT, WRONG_TYPE, WRONG_VALUE = (
    "wrong tool", "missing argument", "unexpected argument", "wrong type", "wrong value")
EXTRA_CALL, MISSING_CALL, TEXT_INSTEAD_OF_CALL, CALL_WHEN_NONE_APPLIES, UNPARSEABLE_CALL = (
    "extra call", "missing call", "text instead of a call", "call when none applies", "unparseable call")
ERROR_KINDS: tuple[str, ...] = (WRONG_TOOL, MISSING_ARGUMENT, UNEXPECTED_ARGUMENT, WRONG_TYPE, WRONG_VALUE,
                                EXTRA_CALL, MISSING_CALL, TEXT_INSTEAD_OF_CALL, CALL_WHEN_NONE_APPLIES,
                                UNPARSEABLE_CALL)

# BFCL's declared types as Python types; JSON Schema's spellings beside them.
_PYTHON_TYPES: dict[str, type] = {"string": str, "integer": int, "float": float, "number": float, "boolean": bool,
                                  "array": list, "tuple": list, "dict": dict, "object": dict, "any": str}
_NESTED = ("array", "tuple")
_STRIP = re.compile(r"[ ,./\-_*^]")

Answer = Mapping[str, Mapping[str, list]]  # BFCL's {function_name: {argument: [accepted values]}}


@dataclass(frozen=True)
class Verdict:
    """One response to one item. Parts that do not apply are None (a relevance item has no names to
    match); `error` is one of `ERROR_KINDS` or None when `correct`."""

    correct: bool
    name_match: bool | None = None
    key_match: bool | None = None
    value_match: bool | None = None
    irrelevance: bool | None = None
    relevance: bool | None = None
    args_valid: bool | None = None
    error: str | None = None
    detail: str = ""


# ------------------------------------------------------------------------------------ one call


@dataclass(frozen=True)
class _Failure:
    kind: str
    detail: str


def standardize_string(text: str) -> str:
    """BFCL's string normalisation: no spaces or `,./-_*^`, lower case, `'` as `"`."""
    return _STRIP.sub("", text).lower().replace("'", '"')


def _accepted_type(accepted: Sequence[Any]) -> type | None:
    return next((type(v) for v in accepted if not (isinstance(v, str) and v == OMITTED)), None)


def _type_ok(value: Any, accepted: Sequence[Any], expected: type | None, nested: type | None) -> tuple[bool, bool]:
    """(valid, is_variable) as BFCL's `type_checker`: the declared type, or the accepted values' type."""
    answer_type = _accepted_type(accepted)
    if expected is None:  # undeclared: the accepted values say what the type is
        expected = answer_type
        if expected is None:
            return True, False
    is_variable = answer_type is not None and answer_type is not expected
    if type(value) is expected:
        if nested is None:
            return True, is_variable
        for option in accepted:
            if not isinstance(option, list) or all(_type_ok(item, option, nested, None)[0] for item in value):
                return True, is_variable
    if answer_type is not None and type(value) is answer_type:
        return nested is None or type(value) is not expected, True
    return False, False


def _norm(value: Any) -> Any:
    return standardize_string(value) if isinstance(value, str) else value


def _dict_ok(value: Mapping[str, Any], accepted: Sequence[Any]) -> _Failure | None:
    failure = _Failure(WRONG_VALUE, "no accepted dictionary")
    for option in accepted:
        if isinstance(option, str) and option == OMITTED:
            continue
        failure = None
        for key, item in value.items():
            if key not in option:
                failure = _Failure(UNEXPECTED_ARGUMENT, f"unexpected key {key!r}")
                break
            if _norm(item) not in [_norm(v) for v in option[key]]:
                failure = _Failure(WRONG_VALUE, f"key {key!r} = {item!r}, expected one of {option[key]!r}")
                break
        if failure is None:
            missing = [k for k, v in option.items() if k not in value and OMITTED not in v]
            if missing:
                failure = _Failure(MISSING_ARGUMENT, f"missing key {missing[0]!r}")
        if failure is None:
            return None
    return failure


def _list_of_dicts_ok(value: list, accepted: Sequence[Any]) -> _Failure | None:
    failure = _Failure(WRONG_VALUE, "no accepted list of dictionaries")
    for option in accepted:
        if not isinstance(option, (list, str)) or len(value) != len(option):
            failure = _Failure(WRONG_VALUE, "wrong number of dictionaries in the list")
            continue
        failure = next((f for f in (_dict_ok(v, [o]) for v, o in zip(value, option)) if f), None)
        if failure is None:
            return None
    return failure


def _argument_failure(name: str, value: Any, accepted: Sequence[Any], declared: Mapping[str, Any] | None
                      ) -> _Failure | None:
    kind = declared.get("type") if declared is not None else None
    expected = _PYTHON_TYPES.get(kind) if isinstance(kind, str) else None
    nested = None
    if kind in _NESTED and declared is not None:
        inner = (declared.get("items") or {}).get("type")
        nested = _PYTHON_TYPES.get(inner) if isinstance(inner, str) else None
    if (expected or _accepted_type(accepted)) is float and type(value) is int:  # int -> float, as BFCL allows
        value = float(value)
    ok, is_variable = _type_ok(value, accepted, expected, nested)
    if not ok:
        shown = kind if isinstance(kind, str) else getattr(_accepted_type(accepted), "__name__", "?")
        return _Failure(WRONG_TYPE, f"argument {name!r}: expected {shown}, got {type(value).__name__} {value!r:.80}")
    if expected is None:
        expected = _accepted_type(accepted)
    if not is_variable:
        if expected is dict:
            return _dict_ok(value, accepted)
        if expected is list and nested is dict:
            return _list_of_dicts_ok(value, accepted)
        if expected is str:
            if standardize_string(value) in [standardize_string(v) for v in accepted if isinstance(v, str)]:
                return None
            return _Failure(WRONG_VALUE, f"argument {name!r} = {value!r:.80}, expected one of {list(accepted)!r:.160}")
        if expected is list:
            options = [[_norm(v) for v in option] for option in accepted if isinstance(option, (list, str))]
            if [_norm(v) for v in value] in options:
                return None
            return _Failure(WRONG_VALUE, f"argument {name!r} = {value!r:.80}, expected one of {list(accepted)!r:.160}")
    if value not in accepted:
        return _Failure(WRONG_VALUE, f"argument {name!r} = {value!r:.80}, expected one of {list(accepted)!r:.160}")
    return None


def _parameters(declaration: Mapping[str, Any] | None, accepted: Mapping[str, list]
                ) -> tuple[Mapping[str, Any], Sequence[str]]:
    """(declared properties, required names); without a declaration, the accepted arguments and the
    ones that may not be omitted."""
    if declaration is None:
        return ({k: {} for k in accepted},
                [k for k, values in accepted.items() if not any(isinstance(v, str) and v == OMITTED for v in values)])
    parameters = declaration.get("parameters") or {}
    return parameters.get("properties") or {}, parameters.get("required") or []


def check_call(call: ToolCall, answer: Answer, declaration: Mapping[str, Any] | None = None) -> _Failure | None:
    """Why `call` is not the accepted call `answer` (BFCL's form), or None when it is. `declaration`:
    the function's declaration (name, parameters), for types and required arguments."""
    expected_name, accepted = next(iter(answer.items()))
    if call.name != expected_name:
        return _Failure(WRONG_TOOL, f"called {call.name!r}, expected {expected_name!r}")
    if call.arguments is None:
        return _Failure(UNPARSEABLE_CALL, f"{call.name}: {call.error or 'arguments are not JSON'}")
    properties, required = _parameters(declaration, accepted)
    for name in required:
        if name not in call.arguments:
            return _Failure(MISSING_ARGUMENT, f"{call.name}: required argument {name!r} is missing")
    for name, value in call.arguments.items():
        if name not in properties or name not in accepted:
            return _Failure(UNEXPECTED_ARGUMENT, f"{call.name}: unexpected argument {name!r}")
        failure = _argument_failure(name, value, accepted[name], properties[name])
        if failure is not None:
            return _Failure(failure.kind, f"{call.name}: {failure.detail}")
    for name, values in accepted.items():
        if name not in call.arguments and not any(isinstance(v, str) and v == OMITTED for v in values):
            return _Failure(MISSING_ARGUMENT, f"{call.name}: argument {name!r} is missing (not optional)")
    return None


def _keys_ok(call: ToolCall, answer: Answer, declaration: Mapping[str, Any] | None) -> bool:
    """Same tool and an acceptable set of argument names (values aside)."""
    expected_name, accepted = next(iter(answer.items()))
    if call.name != expected_name or call.arguments is None:
        return False
    properties, required = _parameters(declaration, accepted)
    keys = set(call.arguments)
    return (all(k in keys for k in required) and all(k in properties and k in accepted for k in keys)
            and all(k in keys or OMITTED in v for k, v in accepted.items()))


# ------------------------------------------------------------------------------------ one item


def bfcl_answer(entry: Mapping[str, Any]) -> dict[str, dict[str, list]]:
    """One expected call in BFCL's form; the plain form's values become one accepted value each (a
    dictionary argument as BFCL writes one: each key's value in a list)."""
    if "name" not in entry:
        return {str(k): {str(a): list(v) for a, v in args.items()} for k, args in entry.items()}

    def one(value: Any) -> Any:
        if isinstance(value, dict):
            return {k: [v] for k, v in value.items()}
        if isinstance(value, list) and value and all(isinstance(v, dict) for v in value):
            return [{k: [x] for k, x in v.items()} for v in value]
        return value

    return {entry["name"]: {str(a): [one(v)] for a, v in (entry.get("arguments") or {}).items()}}


def _match(n_expected: int, n_made: int, fits) -> list[int | None]:
    """For each expected call, the index of its own made call (maximum bipartite matching), or None."""
    owner: dict[int, int] = {}

    def assign(e: int, seen: set[int]) -> bool:
        for m in range(n_made):
            if m not in seen and fits(e, m):
                seen.add(m)
                if m not in owner or assign(owner[m], seen):
                    owner[m] = e
                    return True
        return False

    for e in range(n_expected):
        assign(e, set())
    found: list[int | None] = [None] * n_expected
    for m, e in owner.items():
        found[e] = m
    return found


def _first_fit(failures: Sequence[Sequence[_Failure | None]]) -> list[int | None]:
    """BFCL's matching of parallel calls: each expected call, in order, takes the first made call not
    yet taken that fits it. (A maximum matching would accept a few more answers where two expected
    calls accept the same value; BFCL's parallel_178 is one. The leaderboard's verdict wins here.)"""
    taken: set[int] = set()
    found: list[int | None] = []
    for row in failures:
        m = next((i for i, failure in enumerate(row) if failure is None and i not in taken), None)
        if m is not None:
            taken.add(m)
        found.append(m)
    return found


def _declarations(tools: Sequence[Mapping[str, Any]] | None) -> dict[str, Mapping[str, Any]]:
    return {str(function_of(t).get("name")): function_of(t) for t in tools or () if isinstance(t, Mapping)}


def check_item(calls: Sequence[ToolCall], text: str | None, expected: Any,
               tools: Sequence[Mapping[str, Any]] | None = None, validators: dict | None = None) -> Verdict | None:
    """The verdict on one answered item, or None when the item expects nothing (no `expected_calls`).

    calls: the calls the model made (empty for a text answer); text: its text; expected: the item's
    `expected_calls` (a list of calls in either form, [] for none, "any" for some); tools: the
    item's declarations; validators: a cache of compiled schemas shared across rows."""
    declared = _declarations(tools)
    args_valid = arguments_valid(calls, declared, validators) if declared and calls else None
    if _absent(expected):
        return None
    return _verdict(calls, text, expected, declared, args_valid)


def _verdict(calls: Sequence[ToolCall], text: str | None, expected: Any, declared: Mapping[str, Mapping[str, Any]],
             args_valid: bool | None) -> Verdict:
    text_answer = TEXT_INSTEAD_OF_CALL if text and text.strip() else MISSING_CALL
    if isinstance(expected, str) and expected == ANY_CALL:
        unparseable = next((c for c in calls if c.arguments is None), None)
        if unparseable is not None:
            return Verdict(False, relevance=False, args_valid=args_valid, error=UNPARSEABLE_CALL,
                           detail=f"{unparseable.name}: {unparseable.error}")
        return Verdict(bool(calls), relevance=bool(calls), args_valid=args_valid,
                       error=None if calls else text_answer, detail="" if calls else "no call where one applies")
    answers = [bfcl_answer(e) for e in expected]
    if not answers:
        names = ", ".join(c.name for c in calls)
        return Verdict(not calls, irrelevance=not calls, args_valid=args_valid,
                       error=CALL_WHEN_NONE_APPLIES if calls else None, detail=f"called {names}" if calls else "")
    names_ok = sorted(c.name for c in calls) == sorted(next(iter(a)) for a in answers)
    if not calls:
        return Verdict(False, False, False, False, relevance=False, error=text_answer,
                       detail=f"expected {len(answers)} call(s), got none")
    unparseable = next((c for c in calls if c.arguments is None), None)
    if unparseable is not None:
        return Verdict(False, names_ok, False, False, relevance=False, args_valid=args_valid, error=UNPARSEABLE_CALL,
                       detail=f"{unparseable.name}: {unparseable.error}")

    def decl(answer: Answer) -> Mapping[str, Any] | None:
        return declared.get(next(iter(answer))) if declared else None

    failures = [[check_call(c, a, decl(a)) for c in calls] for a in answers]
    found = _first_fit(failures)
    if len(calls) == len(answers) and None not in found:
        return Verdict(True, True, True, True, relevance=True, args_valid=args_valid)
    keys_found = _match(len(answers), len(calls), lambda e, m: _keys_ok(calls[m], answers[e], decl(answers[e])))
    keys_ok = names_ok and None not in keys_found
    error, detail = _error(calls, answers, failures, found)
    return Verdict(False, names_ok, keys_ok, False, relevance=True, args_valid=args_valid, error=error, detail=detail)


def _error(calls: Sequence[ToolCall], answers: Sequence[Answer], failures, found) -> tuple[str, str]:
    """The kind of error of a wrong answer: a wrong call's most telling failure, else a count."""
    used = {m for m in found if m is not None}
    for e, m in enumerate(found):
        if m is not None:
            continue
        name = next(iter(answers[e]))
        same_tool = [failures[e][i] for i in range(len(calls)) if i not in used and calls[i].name == name]
        if same_tool:
            return same_tool[0].kind, same_tool[0].detail
        if len(calls) >= len(answers):
            free = [i for i in range(len(calls)) if i not in used]
            return WRONG_TOOL, f"no call to {name!r}" + (f" (called {calls[free[0]].name!r})" if free else "")
        return MISSING_CALL, f"expected {len(answers)} call(s), got {len(calls)}: no call to {name!r}"
    return EXTRA_CALL, f"expected {len(answers)} call(s), got {len(calls)}"


def arguments_valid(calls: Sequence[ToolCall], declared: Mapping[str, Mapping[str, Any]],
                    validators: dict | None = None) -> bool:
    """Every call names a declared tool and its arguments are valid against its parameters (JSON Schema,
    with BFCL's types mapped to JSON Schema's)."""
    import jsonschema

    cache = validators if validators is not None else {}
    for call in calls:
        declaration = declared.get(call.name)
        if declaration is None or call.arguments is None:
            return False
        parameters = declaration.get("parameters")
        if parameters is None:
            continue
        entry = cache.get(id(parameters))  # the same declaration object serves every row of an item
        if entry is None or entry[0] is not parameters:
            key = json.dumps(parameters, sort_keys=True, default=str)
            validator = cache.get(key)
            if validator is None:
                schema = json_schema(parameters)
                validator = cache[key] = jsonschema.validators.validator_for(
                    schema, default=jsonschema.Draft202012Validator)(schema)
            entry = cache[id(parameters)] = (parameters, validator)  # holds `parameters`: its id stays its own
        if not entry[1].is_valid(call.arguments):
            return False
    return True


# ------------------------------------------------------------------------------------ batches


def _absent(value: Any) -> bool:
    return value is None or (isinstance(value, float) and math.isnan(value))


def as_calls(value: Any) -> tuple[ToolCall, ...]:
    """A row's calls as a tuple of ToolCall: from the run frame's tuple, a list of dicts, or the
    stored JSON text; none for a missing value (a text answer)."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return ()
    if isinstance(value, str):
        return calls_from_json(value)
    return tuple(c if isinstance(c, ToolCall) else ToolCall.from_json(c) for c in value)


def verdicts(responses: Sequence[str], tool_calls: Sequence[Any], expected_calls: Sequence[Any],
             tools: Sequence[Any]) -> list[Verdict | None]:
    """`check_item` for every row (row-aligned lists, as scoring passes them)."""
    return [verdict for verdict, _ in _rows(responses, tool_calls, expected_calls, tools)]


def _rows(responses: Sequence[str], tool_calls: Sequence[Any], expected_calls: Sequence[Any],
          tools: Sequence[Any]) -> list[tuple[Verdict | None, bool | None]]:
    """(verdict or None, arguments valid or None) per row: rows without expected calls still get the
    schema check."""
    validators: dict = {}
    declarations: dict[int, tuple[Any, dict]] = {}  # id(tools) -> (tools, by name): items repeat across models
    out = []
    for text, calls, expected, tools_value in zip(responses, tool_calls, expected_calls, tools):
        calls = as_calls(calls)
        tools_value = _decoded(tools_value)
        entry = declarations.get(id(tools_value))
        if entry is None or entry[0] is not tools_value:
            entry = declarations[id(tools_value)] = (tools_value, _declarations(tools_value))
        declared = entry[1]
        args_valid = arguments_valid(calls, declared, validators) if declared and calls else None
        expected = _decoded(expected)
        out.append((None if expected is None else _verdict(calls, text, expected, declared, args_valid), args_valid))
    return out


def _decoded(value: Any) -> Any:
    """An item field as a value: None when missing, JSON text decoded (except the keyword "any")."""
    if _absent(value):
        return None
    if isinstance(value, str) and value != ANY_CALL:
        return json.loads(value)
    return value


class _VerdictCache:
    """The verdicts of the last batch: the tool metrics read the same rows, so each batch is checked once."""

    def __init__(self) -> None:
        self._inputs: tuple = ()
        self._out: list[tuple[Verdict | None, bool | None]] = []

    def get(self, *columns: Sequence[Any]) -> list[tuple[Verdict | None, bool | None]]:
        if len(columns) != len(self._inputs) or any(
                len(a) != len(b) or any(x is not y for x, y in zip(a, b)) for a, b in zip(columns, self._inputs)):
            self._out, self._inputs = _rows(*columns), tuple(list(c) for c in columns)
        return self._out


_CACHE = _VerdictCache()


def _metric(name: str, part: str, description: str, na_note: str) -> Metric:
    def fn(responses: Sequence[str], _refs: Sequence[Any], _langs: Sequence[str], *, tool_calls: Sequence[Any],
           expected_calls: Sequence[Any], tools: Sequence[Any]) -> list[float]:
        out = []
        for verdict, args_valid in _CACHE.get(responses, tool_calls, expected_calls, tools):
            value = args_valid if part == "args_valid" else None if verdict is None else getattr(verdict, part)
            out.append(math.nan if value is None else float(value))
        return out

    return Metric(name=name, fn=fn, higher_is_better=True, aggregation="rate", needs_reference=False,
                  description=description, value_range=(0.0, 1.0), columns=("tool_calls", "expected_calls", "tools"),
                  na_note=na_note, version="1")


TOOL_CALL_ACCURACY = _metric(
    "tool_call_accuracy", "correct",
    "1 if the response makes exactly the expected calls (any order; BFCL's rules), no call where none applies, "
    "some call where one does", "no_expected_calls")
TOOL_NAME_MATCH = _metric("tool_name_match", "name_match",
                          "1 if the called tool names equal the expected ones (as a multiset)", "no_expected_calls")
TOOL_ARG_KEY_MATCH = _metric("tool_arg_key_match", "key_match",
                             "1 if the names match and every call has an acceptable set of argument names",
                             "no_expected_calls")
TOOL_ARG_VALUE_MATCH = _metric("tool_arg_value_match", "value_match",
                               "1 if names, argument names and values (typed; BFCL's rules) all match",
                               "no_expected_calls")
TOOL_IRRELEVANCE = _metric("tool_irrelevance", "irrelevance",
                           "1 if no tool was called on an item where none applies (expected_calls = [])",
                           "not_an_irrelevance_item")
TOOL_RELEVANCE = _metric("tool_relevance", "relevance",
                         "1 if some tool was called (parseably) on an item where a call is expected",
                         "no_call_expected")


TOOL_ARGS_VALID = _metric("tool_args_valid", "args_valid",
                          "1 if every call names a declared tool and its arguments are valid against its JSON Schema",
                          "no_calls_to_check")

METRICS: tuple[Metric, ...] = (TOOL_CALL_ACCURACY, TOOL_NAME_MATCH, TOOL_ARG_KEY_MATCH, TOOL_ARG_VALUE_MATCH,
                               TOOL_IRRELEVANCE, TOOL_RELEVANCE, TOOL_ARGS_VALID)


# ------------------------------------------------------------------------------------ vs the baseline


def canonical(value: Any) -> Any:
    """A value in a form where equivalent values are equal: numbers as floats (booleans stay
    booleans), strings as BFCL normalises them, objects and arrays element by element."""
    if isinstance(value, bool) or value is None:
        return value
    if isinstance(value, (int, float)):
        return float(value)
    if isinstance(value, str):
        return standardize_string(value)
    if isinstance(value, Mapping):
        return tuple(sorted((str(k), canonical(v)) for k, v in value.items()))
    if isinstance(value, (list, tuple)):
        return ("[",) + tuple(canonical(v) for v in value)
    return repr(value)


def _call_key(call: ToolCall) -> tuple:
    args = call.raw_arguments if call.arguments is None else canonical(call.arguments)
    return call.name, args


def compare_calls(baseline: Sequence[ToolCall], candidate: Sequence[ToolCall]) -> dict[str, bool]:
    """How the candidate's calls differ from the baseline's on one item (no expected calls needed).

    same_tools: the same tool names (as a multiset); same_call_count; same_arguments: the same calls
    with equivalent arguments (1 == 1.0, "New York" == "new york"), in any order; calls_agree: all
    three (two text answers agree). Flags: called_another_tool (both called, different tools),
    dropped_argument (a tool both called lost an argument name the baseline gave),
    text_instead_of_call (the baseline called, the candidate answered in text), called_when_baseline_did_not,
    and candidate/baseline_unparseable (a call whose arguments are not JSON)."""
    base_names, cand_names = sorted(c.name for c in baseline), sorted(c.name for c in candidate)
    same_tools = base_names == cand_names
    same_arguments = sorted(map(_call_key, baseline), key=repr) == sorted(map(_call_key, candidate), key=repr)
    dropped = False
    for name in set(base_names) & set(cand_names):
        base_keys = set().union(*(c.arguments or {} for c in baseline if c.name == name))
        cand_keys = set().union(*(c.arguments or {} for c in candidate if c.name == name))
        dropped = dropped or bool(base_keys - cand_keys)
    return {
        "same_tools": same_tools,
        "same_call_count": len(baseline) == len(candidate),
        "same_arguments": same_arguments,
        "calls_agree": same_tools and same_arguments,
        "called_another_tool": bool(baseline) and bool(candidate) and not same_tools,
        "dropped_argument": dropped,
        "text_instead_of_call": bool(baseline) and not candidate,
        "called_when_baseline_did_not": bool(candidate) and not baseline,
        "baseline_unparseable": any(c.arguments is None for c in baseline),
        "candidate_unparseable": any(c.arguments is None for c in candidate),
    }


CALL_DIFF_COLUMNS: tuple[str, ...] = ("same_tools", "same_call_count", "same_arguments", "calls_agree",
                                      "called_another_tool", "dropped_argument", "text_instead_of_call",
                                      "called_when_baseline_did_not", "baseline_unparseable", "candidate_unparseable")


def verdict_frame(items: Any, responses: Any) -> Any:
    """The verdict on every answered response to an item with expected calls, for tables and examples.

    items: `item_id`, `expected_calls`, optional `tools`; responses: `item_id`, `response`, optional
    `tool_calls`, `model`, `sample_index`. Returns one row per such response: its key columns,
    correct, error (one of `ERROR_KINDS` or None), detail, calls (readable, `name(arg=value)`)."""
    import pandas as pd

    keys = [c for c in ("item_id", "model", "prompt_version", "sample_index") if c in responses.columns]
    columns = [*keys, "correct", "error", "detail", "calls"]
    if "expected_calls" not in items.columns or responses.empty:
        return pd.DataFrame(columns=columns)
    by_id = items.assign(item_id=items["item_id"].astype(str)).drop_duplicates("item_id").set_index("item_id")
    ids = responses["item_id"].astype(str).tolist()
    texts = responses["response"].tolist()
    calls = responses["tool_calls"].tolist() if "tool_calls" in responses.columns else [None] * len(ids)
    tools = by_id["tools"].reindex(ids).tolist() if "tools" in by_id.columns else [None] * len(ids)
    expected = by_id["expected_calls"].reindex(ids).tolist()
    answered = [i for i, text in enumerate(texts) if isinstance(text, str)]  # None / NaN: the call failed
    rows = _rows(*([column[i] for i in answered] for column in (texts, calls, expected, tools)))
    records = []
    key_values = responses[keys].assign(item_id=ids).to_dict(orient="records")
    for i, (verdict, _) in zip(answered, rows):
        if verdict is None:
            continue
        records.append({**key_values[i], "correct": verdict.correct, "error": verdict.error,
                        "detail": verdict.detail, "calls": " ; ".join(c.pretty() for c in as_calls(calls[i])) or None})
    return pd.DataFrame(records, columns=columns)
