"""Behavioural diff, baseline -> candidate, per item: what changed besides the score.

A migration often fails on behaviour that quality metrics average away: answers that got
twice as long, JSON that became prose, new refusals, Japanese questions answered in English, or
answers that repeat the input (which inflates reference metrics: `workbench.metrics.copying`),
an agent that calls another tool, drops an argument or answers in text where the baseline called
(`workbench.metrics.tool_calls.compare_calls`: no expected calls needed, the usual case with
production logs), and a JSON answer whose fields no longer say what the baseline's said.
Everything here is deterministic text inspection (no model), so it is cheap and explainable:
each detected refusal carries the phrase that matched, so a reviewer can audit it.
"""
from __future__ import annotations

import json
import math
import re
import unicodedata
from typing import Any, Mapping, Sequence

import pandas as pd

from workbench.errors import InputError, Problem
from workbench.metrics.copying import COPY_NGRAM, COPY_THRESHOLD, REPRODUCED_THRESHOLD, copy_measures
from workbench.metrics.json_answers import field_agreement, is_json, parse_answer
from workbench.metrics.score_cache import cached_records, collection_paused, record_key, response_key
from workbench.metrics.structure import strip_code_fence
from workbench.metrics.text import EN, JA, UNKNOWN, detect_language, normalize_language
from workbench.metrics.tool_calls import CALL_DIFF_COLUMNS, as_calls, compare_calls
from workbench.stats import proportion_ci
from workbench.task.dataset import frame_records

FORMATS: tuple[str, ...] = ("json", "code", "headings", "numbered_list", "bullet_list", "plain")

_HEADING_RE = re.compile(r"^\s{0,3}#{1,6}\s+\S", re.M)
_NUMBERED_RE = re.compile(r"^\s*(?:[0-9０-９]{1,3}[.)．）、]|[(（][0-9０-９]{1,3}[)）]|[①-⑳])\s*\S", re.M)
_BULLET_RE = re.compile(r"^\s*(?:[-*+]\s+|[•・●■◆▪◦]\s*)\S", re.M)
_FENCE_RE = re.compile(r"^\s*```", re.M)

KEYS = ("item_id", "sample_index")  # a diff's row: an item, and a sample of it when both sides have several


def detect_format(text: str) -> str:
    """One label from FORMATS, by precedence: JSON object/array (one ``` fence allowed) > code
    block > markdown headings > list (numbered or bulleted, >= 2 items; the more frequent wins)
    > plain. A bare JSON scalar ("42") is plain text, not a format change."""
    body = text.strip()
    try:
        if isinstance(json.loads(strip_code_fence(body)), (dict, list)):
            return "json"
    except ValueError:
        pass
    if _FENCE_RE.search(body):
        return "code"
    if _HEADING_RE.search(body):
        return "headings"
    numbered, bullets = len(_NUMBERED_RE.findall(body)), len(_BULLET_RE.findall(body))
    if max(numbered, bullets) >= 2:
        return "numbered_list" if numbered >= bullets else "bullet_list"
    return "plain"


_CANT_EN = (r"(?:can ?not|can't|won't|will not|(?:won't|will not) be able to|am unable to|'m unable to|"
            r"am not able to|'m not able to)")
_REFUSAL_EN = re.compile(
    "|".join([
        # "I" + inability + an assisting verb; "I'm sorry, but I can't find your order" is support.
        rf"\bI {_CANT_EN} (?:help|assist|provide|comply|fulfil|answer|do that|support|engage|create|"
        rf"generate|share|respond|write|recommend|suggest|encourage|condone|endorse|role-?play|produce|give)",
        r"\bI (?:do not|don't) feel comfortable\b",
        r"\bI must (?:decline|refuse)\b",
        r"\bI(?:'m| am) not (?:comfortable|going to) (?:help|provid|assist|answer)",
        r"\bas an AI(?: language model| assistant)?,? I (?:can ?not|can't|don't|do not|am not|won't)",
    ]),
    re.I,
)
_CANT_JA = r"(?:でき(?:ません|かねます|ない)|いたしかねます|致しかねます|しかねます)"
_REFUSAL_JA = re.compile(
    "|".join([
        # The assistant declining to answer or help: refusals by construction.
        rf"(?:お答え|回答|お手伝い|ご協力|お応え|お力になること)(?:すること|いたすこと)?(?:は|が|には|も)?{_CANT_JA}",
        # Apology + the request itself declined, in one sentence. An apology followed by a
        # policy ("返品できません") is a support answer, not a refusal, so it does not match.
        rf"(?:申し訳(?:ありません|ございません)|すみません|恐れ入ります)が[^。！？\n]*"
        rf"(?:ご依頼|ご要望|ご質問|ご要求|リクエスト|その(?:ような)?(?:内容|質問|依頼|要求))[^。！？\n]*{_CANT_JA}",
        rf"(?:AI|人工知能)(?:言語モデル|アシスタント)?として[^。！？\n]*{_CANT_JA}",
    ])
)


_SENTENCE_END = re.compile(r"[.!?。！？\n]")


def _sentence_around(text: str, start: int, end: int, limit: int = 200) -> str:
    """The sentence holding text[start:end], so a reviewer sees the refusal in context."""
    begin = max((m.end() for m in _SENTENCE_END.finditer(text, 0, start)), default=0)
    stop = _SENTENCE_END.search(text, end)
    return text[begin: stop.end() if stop else len(text)].strip()[:limit]


def detect_refusal(text: str) -> str | None:
    """The sentence holding a refusal phrase (English or Japanese), or None.

    Phrase-based and precision-oriented: it looks for the assistant declining ("I can't help
    with that", "お答えできません", "申し訳ありませんが、そのご依頼には対応できません"), not for any
    apology, because support answers apologise and state policies all the time.
    """
    norm = unicodedata.normalize("NFKC", text).replace("\u2019", "'")
    for pattern in (_REFUSAL_EN, _REFUSAL_JA):
        match = pattern.search(norm)
        if match:
            return _sentence_around(norm, match.start(), match.end())
    return None


def _json_strings(value: Any) -> list[str]:
    if isinstance(value, str):
        return [value]
    if isinstance(value, dict):
        return [s for v in value.values() for s in _json_strings(v)]
    if isinstance(value, list):
        return [s for v in value for s in _json_strings(v)]
    return []


def response_language(text: str, fmt: str | None = None) -> str:
    """"ja", "en" or "unknown". For JSON, only string values count: keys are a schema, usually
    English whatever language the answer is in."""
    if (fmt or detect_format(text)) == "json":
        text = " ".join(_json_strings(json.loads(strip_code_fence(text.strip()))))
    return detect_language(text)


# --- pairing -----------------------------------------------------------------

def _as_frame(responses: pd.DataFrame | Mapping[str, Any] | pd.Series, side: str) -> pd.DataFrame:
    if isinstance(responses, pd.Series):
        responses = responses.to_dict()
    if isinstance(responses, Mapping):
        return pd.DataFrame({"item_id": [str(k) for k in responses], "response": list(responses.values())})
    if not isinstance(responses, pd.DataFrame):
        raise InputError(f"{side} responses must be a DataFrame, Series or dict, got {type(responses).__name__}")
    missing = [c for c in ("item_id", "response") if c not in responses.columns]
    if missing:
        raise InputError([Problem(f"{side} responses", None, c, "required column is missing") for c in missing])
    if "model" in responses.columns and responses["model"].nunique(dropna=True) > 1:
        raise InputError(Problem(f"{side} responses", None, "model",
                                 f"holds several models {sorted(responses['model'].unique())[:5]}; pass one"))
    cols = ["item_id", "response"] + [c for c in ("sample_index", "tool_calls") if c in responses.columns]
    frame = responses[cols].assign(item_id=responses["item_id"].astype(str))
    keys = [c for c in KEYS if c in frame.columns]
    if frame.duplicated(keys).any():
        raise InputError(Problem(f"{side} responses", None, "item_id",
                                 f"several rows per {'/'.join(keys)}; pass one prompt version"))
    return frame


def _text(value: Any, side: str, item_id: str) -> str | None:
    if value is None or value is pd.NA or (isinstance(value, float) and math.isnan(value)):
        return None
    if not isinstance(value, str):
        raise InputError(Problem(f"{side} responses", None, "response",
                                 f"item {item_id}: expected text, got {type(value).__name__}"))
    return value


def _describe(text: str | None) -> dict[str, Any]:
    if text is None:
        return {"chars": math.nan, "format": None, "refusal": None, "refusal_phrase": None, "language": None}
    fmt = detect_format(text)
    phrase = detect_refusal(text)
    return {"chars": float(len(text.strip())), "format": fmt, "refusal": phrase is not None,
            "refusal_phrase": phrase, "language": response_language(text, fmt)}


def _wrong_language(detected: str | None, expected: str | None) -> bool | None:
    if detected is None or expected not in (EN, JA):
        return None  # missing response, or an item language we cannot check
    return detected not in (expected, UNKNOWN)


def behaviour_diff(
    items_df: pd.DataFrame,
    baseline_responses: pd.DataFrame | Mapping[str, Any] | pd.Series,
    candidate_responses: pd.DataFrame | Mapping[str, Any] | pd.Series,
    *, copy_threshold: float = COPY_THRESHOLD, reproduced_threshold: float = REPRODUCED_THRESHOLD,
    copy_ngram: int = COPY_NGRAM, store: Any | None = None,
) -> pd.DataFrame:
    """One row per item (per sample_index when both sides have it) present on either side.

    Responses: a frame with `item_id`, `response` (one model, one prompt version), or a mapping
    item_id -> text. A missing response (failed call) leaves that side's columns empty and its
    change flags <NA>, so summaries count it in `n_missing`, not as a change.
    Columns: item_id, [sample_index], language, missing, baseline_/candidate_ chars, format,
    refusal, refusal_phrase, language_detected, wrong_language, input_copy (share of the answer
    that is verbatim from the item's `input`), input_reproduced (share of the input repeated in
    the answer), copied_input (input_copy >= `copy_threshold` or input_reproduced >=
    `reproduced_threshold`; <NA> without an input; see `workbench.metrics.copying`);
    length_delta, length_ratio, format_changed, became_refusal, stopped_refusing, language_changed;
    with `tool_calls` in the responses (tuples of ToolCall, as run frames hold them): baseline_/
    candidate_calls (readable), baseline_/candidate_called, and `compare_calls`' same_tools,
    same_call_count, same_arguments, calls_agree, called_another_tool, dropped_argument,
    text_instead_of_call, called_when_baseline_did_not, baseline_/candidate_unparseable (<NA> on items
    without tools where neither side called); json_agreement: the candidate's JSON answer's field
    agreement with the baseline's, on items with a `response_format`.
    `store`: where each answer's description and copy measures are kept (`score_cache.cached_records`),
    so a warm comparison reads them; None measures every answer.
    """
    if "item_id" not in items_df.columns:
        raise InputError(Problem("items", None, "item_id", "required column is missing"))
    base, cand = _as_frame(baseline_responses, "baseline"), _as_frame(candidate_responses, "candidate")
    keys = ["item_id"] + (["sample_index"] if "sample_index" in base and "sample_index" in cand else [])
    with_calls = "tool_calls" in base.columns or "tool_calls" in cand.columns
    base, cand = (f.assign(tool_calls=f["tool_calls"] if "tool_calls" in f.columns else None) for f in (base, cand))
    pairs = base[keys + ["response", "tool_calls"]].merge(cand[keys + ["response", "tool_calls"]], on=keys,
                                                          how="outer", suffixes=("_b", "_c"))
    item_ids = items_df["item_id"].astype(str).tolist()  # lists, not Series: a string column iterates slowly

    def by_item(column: str) -> dict[str, Any]:
        return dict(zip(item_ids, items_df[column].tolist() if column in items_df else [None] * len(items_df)))

    langs, inputs, tools, formats = (by_item(c) for c in ("language", "input", "tools", "response_format"))
    expected_languages = {lang: normalize_language(lang) for lang in {v for v in langs.values() if type(v) is str}}
    unknown = sorted(set(pairs["item_id"].tolist()) - set(langs))
    if unknown:
        raise InputError(Problem("responses", None, "item_id", f"ids not in the items: {unknown[:10]}"))

    with collection_paused():  # rows, records and tuples by the ten thousand, in no cycle
        return _diff_frame(pairs, keys, with_calls, langs, inputs, tools, formats, expected_languages,
                           (copy_threshold, reproduced_threshold, copy_ngram), store)


def _diff_frame(pairs: pd.DataFrame, keys: list[str], with_calls: bool, langs: dict[str, Any],
                inputs: dict[str, Any], tools: dict[str, Any], formats: dict[str, Any],
                expected_languages: dict[str, str | None], copy_params: tuple[float, float, int],
                store: Any | None) -> pd.DataFrame:
    """`behaviour_diff`'s rows from the paired answers (`pairs`: keys, response_/tool_calls_ b and c)."""
    records = frame_records(pairs)
    texts = [(_text(rec["response_b"], "baseline", rec["item_id"]), _text(rec["response_c"], "candidate", rec["item_id"]))
             for rec in records]
    source_keys = {iid: record_key(inputs[iid]) for iid in dict.fromkeys(rec["item_id"] for rec in records)}
    measured = _measure_answers([(t, source_keys[rec["item_id"]], inputs[rec["item_id"]])
                                 for rec, both_texts in zip(records, texts) for t in both_texts if t is not None],
                                copy_params, store)
    absent = (_describe(None), copy_measures(None, None))
    item_of = [rec["item_id"] for rec in records]
    base_side = [absent if t is None else measured[(t, source_keys[iid])] for iid, (t, _) in zip(item_of, texts)]
    cand_side = [absent if t is None else measured[(t, source_keys[iid])] for iid, (_, t) in zip(item_of, texts)]
    b_all, b_copies = [d for d, _ in base_side], [m for _, m in base_side]
    c_all, c_copies = [d for d, _ in cand_side], [m for _, m in cand_side]
    expected = [expected_languages[lang] if type(lang) is str else normalize_language(lang)
                for lang in (langs[iid] for iid in item_of)]
    both = [b["format"] is not None and c["format"] is not None for b, c in zip(b_all, c_all)]
    pairs_of = list(zip(b_all, c_all, both))

    def side(name: str) -> tuple[list[Any], list[Any]]:
        return [b[name] for b in b_all], [c[name] for c in c_all]

    # built column by column (one list each, no dict per row): the same values the per-row rules give
    columns: dict[str, list[Any]] = {k: [rec[k] for rec in records] for k in keys}
    columns["language"] = expected
    columns["missing"] = ["both" if b["format"] is None and c["format"] is None else "baseline" if b["format"] is None
                          else "candidate" if c["format"] is None else None for b, c in zip(b_all, c_all)]
    columns["baseline_chars"], columns["candidate_chars"] = side("chars")
    columns["length_delta"] = [c["chars"] - b["chars"] for b, c in zip(b_all, c_all)]
    columns["length_ratio"] = [c["chars"] / b["chars"] if ok and b["chars"] > 0 else math.nan for b, c, ok in pairs_of]
    columns["baseline_format"], columns["candidate_format"] = side("format")
    columns["format_changed"] = [b["format"] != c["format"] if ok else None for b, c, ok in pairs_of]
    columns["baseline_refusal"], columns["candidate_refusal"] = side("refusal")
    columns["baseline_refusal_phrase"], columns["candidate_refusal_phrase"] = side("refusal_phrase")
    columns["became_refusal"] = [(c["refusal"] and not b["refusal"]) if ok else None for b, c, ok in pairs_of]
    columns["stopped_refusing"] = [(b["refusal"] and not c["refusal"]) if ok else None for b, c, ok in pairs_of]
    columns["baseline_language_detected"], columns["candidate_language_detected"] = side("language")
    columns["baseline_wrong_language"] = [_wrong_language(b["language"], e) for b, e in zip(b_all, expected)]
    columns["candidate_wrong_language"] = [_wrong_language(c["language"], e) for c, e in zip(c_all, expected)]
    columns["language_changed"] = [(b["language"] != c["language"] and UNKNOWN not in (b["language"], c["language"]))
                                   if ok else None for b, c, ok in pairs_of]
    for k, measure in enumerate(("input_copy", "input_reproduced", "copied_input")):
        columns[f"baseline_{measure}"] = [m[k] for m in b_copies]
        columns[f"candidate_{measure}"] = [m[k] for m in c_copies]
    calls = [_call_columns(rec, ok, with_calls, not _absent(tools[iid]))
             for rec, iid, ok in zip(records, item_of, both)]
    for name in ("baseline_calls", "candidate_calls", *_CALL_BOOL_COLUMNS):
        columns[name] = [row[name] for row in calls]
    columns["json_agreement"] = [_json_agreement(b_text, c_text) if ok and not _absent(formats[iid]) else math.nan
                                 for iid, (b_text, c_text), ok in zip(item_of, texts, both)]
    if not records:
        out = pd.DataFrame([], columns=[*keys, *_COLUMNS])
        return out.astype({col: "boolean" for col in _BOOL_COLUMNS})
    for col in _BOOL_COLUMNS:  # boolean arrays before the frame: no block of objects stacked for them and kept
        columns[col] = pd.array(columns[col], dtype="boolean")  # alive by the object columns beside them
    return pd.DataFrame(columns, columns=[*keys, *_COLUMNS])


BEHAVIOUR_VERSION = "1"  # of _describe (format, refusal, language detection) and copy_measures: bump when they change


def _measure_answers(answers: list[tuple[str, str, Any]], copy_params: tuple[float, float, int],
                     store: Any | None) -> dict[tuple[str, str], tuple[dict[str, Any], Sequence[Any]]]:
    """{(answer, input key): (description, copy measures)} of each distinct (answer, input key, item
    input): read from the store where it holds them (kept as records, `score_cache.cached_records`),
    else measured (and kept there)."""
    threshold, reproduced_threshold, n = copy_params
    unique = list({(text, source_key): source for text, source_key, source in answers}.items())

    def compute(positions: list[int]) -> list[dict[str, Any]]:
        return [{"describe": _describe(unique[i][0][0]),
                 "copy": list(copy_measures(unique[i][0][0], unique[i][1], threshold=threshold, n=n,
                                            reproduced_threshold=reproduced_threshold))} for i in positions]

    version = f"{BEHAVIOUR_VERSION}#{record_key(list(copy_params))[:16]}"
    keys = [(response_key(text), source_key) for (text, source_key), _source in unique]
    records = cached_records(store, "behaviour", version, keys, compute)
    return {key: (record["describe"], record["copy"]) for (key, _source), record in zip(unique, records)}


def _absent(value: Any) -> bool:
    return value is None or value is pd.NA or (isinstance(value, float) and math.isnan(value))


def _call_columns(rec: Mapping[str, Any], both: bool, with_calls: bool, has_tools: bool) -> dict[str, Any]:
    """The tool-call columns of one pair: <NA> unless both sides answered on an item that declares tools
    or where either side called one."""
    base, cand = _calls_of(rec["response_b"], rec["tool_calls_b"]), _calls_of(rec["response_c"], rec["tool_calls_c"])
    if not (base or cand or (with_calls and both and has_tools)):
        return _NO_CALLS  # a text answer on both sides: the usual row
    out: dict[str, Any] = {"baseline_calls": " ; ".join(c.pretty() for c in base) or None,
                           "candidate_calls": " ; ".join(c.pretty() for c in cand) or None}
    if not (with_calls and both and (has_tools or base or cand)):
        return {**out, "baseline_called": None, "candidate_called": None, **dict.fromkeys(CALL_DIFF_COLUMNS)}
    return {**out, "baseline_called": bool(base), "candidate_called": bool(cand), **compare_calls(base, cand)}


def _calls_of(response: Any, calls: Any) -> tuple[Any, ...]:
    """One side's tool calls (none without an answer); a text answer's empty tuple as it is."""
    if _absent(response) or (type(calls) is tuple and not calls):
        return ()
    return as_calls(calls)


def _json_agreement(baseline: str | None, candidate: str | None) -> float:
    """Field agreement of the candidate's JSON answer with the baseline's (NaN when the baseline's is
    not JSON: there is nothing to agree with; 0 when only the candidate's is not)."""
    base, cand = parse_answer(baseline), parse_answer(candidate)
    if not is_json(base):
        return math.nan
    return field_agreement(cand, base) if is_json(cand) else 0.0


_CALL_BOOL_COLUMNS = ("baseline_called", "candidate_called", *CALL_DIFF_COLUMNS)
_NO_CALLS: dict[str, Any] = {"baseline_calls": None, "candidate_calls": None, **dict.fromkeys(_CALL_BOOL_COLUMNS)}
_BOOL_COLUMNS = ("format_changed", "baseline_refusal", "candidate_refusal", "became_refusal",
                 "stopped_refusing", "baseline_wrong_language", "candidate_wrong_language", "language_changed",
                 "baseline_copied_input", "candidate_copied_input", *_CALL_BOOL_COLUMNS)
_COLUMNS = ("language", "missing", "baseline_chars", "candidate_chars", "length_delta", "length_ratio",
            "baseline_format", "candidate_format", "format_changed", "baseline_refusal", "candidate_refusal",
            "baseline_refusal_phrase", "candidate_refusal_phrase", "became_refusal", "stopped_refusing",
            "baseline_language_detected", "candidate_language_detected", "baseline_wrong_language",
            "candidate_wrong_language", "language_changed", "baseline_input_copy", "candidate_input_copy",
            "baseline_input_reproduced", "candidate_input_reproduced", "baseline_copied_input",
            "candidate_copied_input", "baseline_calls", "candidate_calls", *_CALL_BOOL_COLUMNS, "json_agreement")
_RATES = ("format_changed", "became_refusal", "stopped_refusing", "baseline_refusal", "candidate_refusal",
          "baseline_wrong_language", "candidate_wrong_language", "language_changed",
          "baseline_copied_input", "candidate_copied_input", "calls_agree", "same_tools", "same_arguments",
          "same_call_count", "called_another_tool", "dropped_argument", "text_instead_of_call",
          "called_when_baseline_did_not", "baseline_called", "candidate_called", "baseline_unparseable",
          "candidate_unparseable")
# what `summarize_behaviour` reads of a diff (the rates' flags: the binary and copy checks read some of them)
SUMMARIZED = ("missing", *_RATES, "json_agreement", "length_ratio", "length_delta")


def _summary_row(diff: pd.DataFrame) -> dict[str, float]:
    paired = diff[diff["missing"].isna()]
    row: dict[str, float] = {"n_pairs": float(len(paired)), "n_missing": float(diff["missing"].notna().sum())}
    for col in (c for c in _RATES if c in paired.columns):  # a diff saved before a flag existed lacks it
        values = paired[col].dropna()
        row[f"{col}_rate"] = float(values.mean()) if len(values) else math.nan
    if "calls_agree" in paired.columns and paired["calls_agree"].notna().any():
        agree = paired["calls_agree"].dropna()
        ci = proportion_ci(int(agree.sum()), len(agree))  # Wilson, 95%: agreement is a rate over pairs
        row.update(calls_agree_ci_low=ci.low, calls_agree_ci_high=ci.high, n_tool_pairs=float(len(agree)))
    if "json_agreement" in paired.columns:
        agreement = paired["json_agreement"].dropna()
        row["mean_json_agreement"] = float(agreement.mean()) if len(agreement) else math.nan
    ratio = paired["length_ratio"].dropna()
    row["median_length_ratio"] = float(ratio.median()) if len(ratio) else math.nan
    row["mean_length_delta"] = float(paired["length_delta"].mean()) if len(paired) else math.nan
    return row


def summarize_behaviour(diff: pd.DataFrame, by: str | Sequence[str] | None = None) -> pd.DataFrame:
    """Rates of each change over the pairs where both responses exist (NaN flags excluded).

    One row overall, or one per group of `by` (e.g. "language" or a slice column joined from
    the items). Columns: n_pairs, n_missing, <flag>_rate for each change flag (including
    baseline_/candidate_copied_input_rate: the per-model input-copy rate), median_length_ratio,
    mean_length_delta; with tool calls, calls_agree_rate's 95% Wilson interval (calls_agree_ci_low /
    _high) over n_tool_pairs; with JSON answers, mean_json_agreement.
    """
    if by is None:
        return pd.DataFrame([_summary_row(diff)], index=pd.Index(["all"], name="group"))
    groups = [by] if isinstance(by, str) else list(by)
    grouper = groups[0] if len(groups) == 1 else groups  # scalar keys for one column, tuples for several
    parts = {key: _summary_row(g) for key, g in diff.groupby(grouper, dropna=False)}
    out = pd.DataFrame.from_dict(parts, orient="index")
    out.index.names = groups
    return out


def format_transitions(diff: pd.DataFrame) -> pd.DataFrame:
    """Counts of baseline format (rows) -> candidate format (columns) over paired responses."""
    paired = diff[diff["missing"].isna()]
    return pd.crosstab(paired["baseline_format"], paired["candidate_format"])
