"""Blind human pair labels: who sees what, durable append-only decisions, and what they add up to.

The `labels` table is a log: one row per decision, never updated or deleted. Undo appends an
`undo` row that points at the label it cancels, so the full history survives and two kernels
writing at once cannot overwrite each other. Everything else (current labels, where a rater
resumes, progress, agreement, exports) is a pure function of that log plus a deterministic
assignment computed from a seed, so a restarted kernel rebuilds exactly the same state.

Assignment is derived by hashing, not stored: `sha256(seed, item, rater)` decides the side each
model appears on (per rater, so one rater's position bias does not line up with one model), and
rendezvous hashing picks the `overlap` raters of each item (adding items or raters later leaves
earlier assignments in place). The seed goes into every row, so what was on screen is auditable.
"""
from __future__ import annotations

import hashlib
import uuid
from pathlib import Path
from typing import TYPE_CHECKING, Iterable, Mapping, Sequence

import numpy as np
import pandas as pd

from workbench.errors import InputError, Problem
from workbench.judges import candidate_score
from workbench.stats import StatsInputError, propose_probabilities, sample_queue
from workbench.store import open_store

if TYPE_CHECKING:
    from workbench.stats.active_labeling import LabelQueue

DECISIONS = ("left", "right", "tie", "both_bad", "skip")
RATED_CHOICES = ("A", "B", "tie", "both_bad")  # a choice in model terms that is a rating (a skip is not)
ACTIONS = (*DECISIONS, "undo")
LOG_COLUMNS = ["label_id", "task", "item_id", "rater", "left_model", "right_model", "action", "winner_model",
               "undoes_label_id", "note", "assignment_seed", "session_id", "created_at"]
PAIR_COLUMNS = ["item_id", "input", "response_a", "response_b"]


# ---- deterministic assignment (pure) -----------------------------------------------------------
def _hash_int(*parts: object) -> int:
    text = "\x1f".join(str(p) for p in parts)
    return int.from_bytes(hashlib.sha256(text.encode("utf-8")).digest()[:8], "big")


def sides(seed: int, item_id: str, rater: str, model_a: str, model_b: str) -> tuple[str, str]:
    """(left_model, right_model) shown to `rater` for `item_id`: a fair coin per (seed, item, rater)."""
    if _hash_int(seed, "side", item_id, rater) & 1:
        return model_b, model_a
    return model_a, model_b


def item_order(item_ids: Iterable[str], seed: int) -> list[str]:
    """One seeded shuffled order shared by every rater, so overlapping items get labeled at about
    the same time and live agreement has shared items early."""
    unique = list(dict.fromkeys(str(i) for i in item_ids))
    return sorted(unique, key=lambda i: (_hash_int(seed, "order", i), i))


def assign_raters(item_ids: Iterable[str], raters: Sequence[str], overlap: int, seed: int) -> dict[str, tuple[str, ...]]:
    """Each item -> the `overlap` raters with the highest hash score (rendezvous hashing): balanced
    in expectation, deterministic, and stable when items or raters are added later."""
    raters = list(dict.fromkeys(raters))
    if not raters:
        raise InputError(Problem("labeler", None, "raters", "the rater list is empty"))
    if not 1 <= overlap <= len(raters):
        raise InputError(Problem("labeler", None, "overlap",
                                 f"overlap must be between 1 and the number of raters ({len(raters)}), got {overlap}"))
    return {item: tuple(sorted(raters, key=lambda r: (-_hash_int(seed, "rater", item, r), r))[:overlap])
            for item in dict.fromkeys(str(i) for i in item_ids)}


def rater_queue(item_ids: Iterable[str], rater: str, seed: int, raters: Sequence[str] | None = None,
                overlap: int | None = None, shuffle: bool = True) -> list[str]:
    """The items `rater` should label, in labeling order. Without a rater list everyone labels all.
    `shuffle=False` keeps the order given (an active queue is already in its drawn random order)."""
    order = item_order(item_ids, seed) if shuffle else list(dict.fromkeys(str(i) for i in item_ids))
    if not raters:
        if overlap is not None:
            raise InputError(Problem("labeler", None, "overlap", "overlap needs the list of raters (raters=[...])"))
        return order
    if rater not in raters:
        raise InputError(Problem("labeler", None, "rater",
                                 f"rater '{rater}' is not in the rater list ({', '.join(raters)})"))
    assigned = assign_raters(order, raters, overlap or len(set(raters)), seed)
    return [i for i in order if rater in assigned[i]]


# ---- the active order: which items to queue, with which probability (pure) ----------------------
ORDERS = ("uniform", "active")
DEFAULT_ACTIVE_BUDGET = 200  # expected labels in an active queue when the labeler is given no budget


def draw_active_queue(judge: pd.DataFrame, *, budget: float, seed: int,
                      slices: pd.Series | None = None) -> "LabelQueue":
    """An active queue (Zrnic & Candès 2024): items where the judge's two orders disagree, tie or
    failed are likelier to enter it, slices with few expected labels are raised, and each queued
    item keeps the probability it had, so the weighted estimate stays unbiased (see
    stats.active_labeling). `judge`: one row per item of the comparison with `choice` and, when
    both orders were judged, `choice_ab` / `choice_ba`; `budget`: expected number of labels."""
    frame = judge.assign(item_id=judge["item_id"].astype(str)).drop_duplicates("item_id").set_index("item_id")
    if frame.empty:
        raise InputError(Problem("labeler", None, "order", "the active order needs the judge's verdicts; none are stored"))
    first = frame["choice_ba" if "choice_ba" in frame else "choice"].map(candidate_score)  # candidate shown first
    second = frame["choice_ab" if "choice_ab" in frame else "choice"].map(candidate_score)
    try:
        probabilities = propose_probabilities(first, second, budget=budget, slices=slices)
    except StatsInputError as exc:
        raise InputError(Problem("labeler", None, "budget", str(exc))) from None
    return sample_queue(probabilities, seed=seed)


# ---- the log and what it folds to (pure) -------------------------------------------------------
def fold(log: pd.DataFrame) -> pd.DataFrame:
    """Current labels: per (item, rater) the latest decision that no `undo` row cancels.
    Undoing the latest decision brings back the one before it (a stack, as users expect)."""
    if log.empty:
        return pd.DataFrame(columns=LOG_COLUMNS)
    undone = set(log.loc[log["action"] == "undo", "undoes_label_id"].dropna().astype(int))
    live = log[(log["action"] != "undo") & ~log["label_id"].isin(undone)]
    return (live.sort_values("label_id").groupby(["item_id", "rater"], sort=False).tail(1)
            .sort_values("label_id").reset_index(drop=True))


class RaterState:
    """The same fold as `fold`, kept up to date row by row, so a click costs one small query
    instead of re-reading the rater's whole history."""

    def __init__(self) -> None:
        self.last_label_id = 0
        self.effective: dict[str, dict[str, object]] = {}
        self._decisions: dict[str, list[dict[str, object]]] = {}
        self._undone: set[int] = set()

    def apply(self, rows: Iterable[Mapping[str, object]]) -> None:
        for row in sorted(rows, key=lambda r: int(r["label_id"])):
            if int(row["label_id"]) <= self.last_label_id:
                continue
            self.last_label_id = int(row["label_id"])
            item = str(row["item_id"])  # an undo row carries the item of the label it cancels
            if row["action"] == "undo":
                self._undone.add(int(row["undoes_label_id"]))
            else:
                self._decisions.setdefault(item, []).append(dict(row))
            live = [r for r in self._decisions.get(item, []) if int(r["label_id"]) not in self._undone]
            if live:
                self.effective[item] = live[-1]
            else:
                self.effective.pop(item, None)


def next_item(queue: Sequence[str], decided: Iterable[str], after: str | None = None) -> str | None:
    """First item of `queue` without a decision, looking after `after` first and then wrapping;
    None when every item is decided. With `after=None` this is where a rater resumes."""
    done = set(decided)
    start = queue.index(after) + 1 if after in queue else 0
    for item in list(queue[start:]) + list(queue[:start]):
        if item not in done:
            return item
    return None


def progress(current: pd.DataFrame, queues: Mapping[str, Sequence[str]]) -> pd.DataFrame:
    """Per rater: assigned, labeled (a real choice), skipped, remaining."""
    rows = []
    for rater, queue in queues.items():
        mine = current[(current["rater"] == rater) & current["item_id"].isin(list(queue))]
        skipped = int((mine["action"] == "skip").sum())
        labeled = len(mine) - skipped
        rows.append({"rater": rater, "assigned": len(queue), "labeled": labeled, "skipped": skipped,
                     "remaining": len(queue) - labeled - skipped})
    return pd.DataFrame(rows, columns=["rater", "assigned", "labeled", "skipped", "remaining"])


def choice_in_model_terms(current: pd.DataFrame, model_a: str, model_b: str) -> pd.Series:
    """A (model_a won), B (model_b won), tie, both_bad or skip, whatever side each model was on."""
    unknown = set(current["left_model"]) | set(current["right_model"])
    unknown -= {model_a, model_b}
    if unknown:
        raise InputError(Problem("labels", None, "left_model/right_model",
                                 f"labels compare models {sorted(unknown)} that are not {model_a!r} or {model_b!r}"))
    winner = current["winner_model"]
    choice = np.where(winner == model_a, "A", np.where(winner == model_b, "B", current["action"].astype(str)))
    return pd.Series(choice, index=current.index, dtype=object)


def export_frame(current: pd.DataFrame, model_a: str, model_b: str) -> pd.DataFrame:
    """The labels a report or a spreadsheet wants: one row per (item, rater), choice in model terms."""
    out = pd.DataFrame({
        "task": current["task"], "item_id": current["item_id"], "rater": current["rater"],
        "model_a": model_a, "model_b": model_b,
        "left_model": current["left_model"], "right_model": current["right_model"],
        "choice": choice_in_model_terms(current, model_a, model_b), "winner_model": current["winner_model"],
        "note": current["note"],
        "time": pd.to_datetime(current["created_at"].astype(float), unit="s", utc=True),
        "label_id": current["label_id"], "session_id": current["session_id"],
        "assignment_seed": current["assignment_seed"],
    })
    return out.reset_index(drop=True)


# ---- pairs to label ----------------------------------------------------------------------------
def validate_pairs(pairs: pd.DataFrame, model_a: str | None = None, model_b: str | None = None) -> pd.DataFrame:
    """Check a pairs frame and return it with `model_a`/`model_b` columns filled in.
    Model names come from the columns or from the arguments; every problem is listed at once."""
    problems: list[Problem] = []
    for col in PAIR_COLUMNS:
        if col not in pairs.columns:
            problems.append(Problem("pairs", None, col, "missing column"))
    out = pairs.copy()
    for col, given in (("model_a", model_a), ("model_b", model_b)):
        if given is not None:
            out[col] = given
        elif col not in out.columns:
            problems.append(Problem("pairs", None, col, f"missing: pass {col}= or add a {col} column"))
    if problems:
        raise InputError(problems)
    out["item_id"] = out["item_id"].astype(str)
    for row, rec in enumerate(out.to_dict(orient="records"), start=1):
        for col in ("response_a", "response_b", "input"):
            if not isinstance(rec[col], str):
                problems.append(Problem("pairs", row, col, f"item {rec['item_id']}: expected text, got {rec[col]!r}"))
        if rec["model_a"] == rec["model_b"]:
            problems.append(Problem("pairs", row, "model_b", f"item {rec['item_id']}: both sides are {rec['model_a']!r}"))
    for row in np.flatnonzero(out["item_id"].duplicated().to_numpy()):
        problems.append(Problem("pairs", int(row) + 1, "item_id", f"duplicate item id {out['item_id'].iloc[row]!r}"))
    if out["model_a"].nunique() > 1 or out["model_b"].nunique() > 1:
        problems.append(Problem("pairs", None, "model_a/model_b", "one labeling task compares one pair of models"))
    if problems:
        raise InputError(problems)
    return out.reset_index(drop=True)


# ---- the durable log (I/O) ---------------------------------------------------------------------
class LabelLog:
    """Appends decisions for one labeling task to the store, each committed durably before returning.

    Uses its own connection with `synchronous=FULL` (WAL): a returned `record` survives a killed
    kernel and a power cut. Open one per kernel; several kernels may label the same store at once.
    `store_path` is a SQLite file or a `postgresql://` URL (raters on many machines, one server).
    """

    def __init__(self, store_path: str | Path, task: str, session_id: str | None = None, *,
                 items: Iterable[object] | None = None, models: Sequence[str] | None = None):
        """`items` (the task's item ids) and `models` (its pair) make `record` refuse a label for
        any other item or model; without `models` the pair of the task's first labels is kept."""
        if not task or not str(task).strip():
            raise InputError(Problem("labeler", None, "task", "a task name is required"))
        self.task = str(task)
        self.items = None if items is None else {require_item(i) for i in items}
        self.models = None if models is None else frozenset(str(m) for m in models)
        if self.models is not None and len(self.models) != 2:
            raise InputError(Problem("labeler", None, "models", f"a task compares two models, got {sorted(self.models)}"))
        self.session_id = session_id or uuid.uuid4().hex
        self.store = open_store(store_path, synchronous="FULL")

    def close(self) -> None:
        self.store.close()

    def __enter__(self) -> "LabelLog":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def record(self, item_id: str, rater: str, left_model: str, right_model: str, action: str, seed: int,
               note: str | None = None) -> int:
        """Append one decision; returns its label id once it is committed. A label the task's report
        could not use (an item outside it, another pair of models) is refused, never stored."""
        rater = require_rater(rater)
        item_id = require_item(item_id)
        seed = require_seed(seed)
        if action not in DECISIONS:
            raise InputError(Problem("labeler", None, "action", f"unknown action {action!r} (one of {', '.join(DECISIONS)})"))
        if left_model == right_model:
            raise InputError(Problem("labeler", None, "right_model", "left and right show the same model"))
        if self.items is not None and item_id not in self.items:
            raise InputError(Problem("labeler", None, "item_id", f"item {shown(item_id)} is not one of task "
                                     f"'{self.task}''s {len(self.items)} items"))
        pair = self.models if self.models is not None else frozenset(self.store.label_models(self.task)) or None
        if pair is not None and {left_model, right_model} != pair:
            raise InputError(Problem("labeler", None, "left_model/right_model", f"task '{self.task}' compares "
                                     f"{' and '.join(sorted(pair))}, not {shown(left_model)} and {shown(right_model)}"))
        winner = {"left": left_model, "right": right_model}.get(action)
        return self.store.append_label(self.task, item_id, rater, left_model, right_model, action, winner,
                                       (note or "").strip() or None, seed, self.session_id)

    def undo_last(self, rater: str, seed: int) -> tuple[int, str] | None:
        """Cancel the rater's latest decision that is not already cancelled (one atomic statement,
        so two kernels undoing at once never cancel the same label twice). Returns
        (undo label id, item id) or None when there is nothing to undo."""
        rater = require_rater(rater)
        return self.store.append_undo(self.task, rater, require_seed(seed), self.session_id)

    def log(self, rater: str | None = None) -> pd.DataFrame:
        """Every row of this task (optionally one rater's), oldest first."""
        return self.store.labels_frame(self.task, rater)

    def rows_after(self, rater: str, label_id: int) -> list[dict[str, object]]:
        """The rater's rows newer than `label_id` (for `RaterState`), oldest first."""
        return self.store.label_rows(self.task, rater, int(label_id))

    def current(self, rater: str | None = None) -> pd.DataFrame:
        return fold(self.log(rater))

    def queue(self, order: str, judge: pd.DataFrame | None, *, budget: float | None, seed: int,
              slices: pd.Series | None = None) -> list[tuple[str, float]] | None:
        """The task's active queue [(item_id, probability)], drawn and recorded on first use (the first
        draw wins when two kernels start at once); None in uniform order. A task keeps one order for
        good: its labels are weighted by the queue, so uniform labels cannot join an active task, nor
        active labels a task that already has uniform ones."""
        if order not in ORDERS:
            raise InputError(Problem("labeler", None, "order", f"unknown order {order!r} (one of {', '.join(ORDERS)})"))
        recorded = self.store.label_queue(self.task)
        if order == "uniform":
            if recorded is not None:
                raise InputError(Problem("labeler", None, "order", "this task labels in active order (its queue is "
                                         "recorded): open the labeler with order='active', or name a new task"))
            return None
        if recorded is not None:
            return recorded["queue"]
        if not self.log().empty:
            raise InputError(Problem("labeler", None, "order", "this task already has labels in uniform order; an "
                                     "active queue must draw every label, so name a new task for it (the notebook's "
                                     "`task` parameter)"))
        if judge is None:
            raise InputError(Problem("labeler", None, "order", "the active order needs the judge's verdicts on every "
                                     "item (a pairwise judge in the report's parameters, run once)"))
        if budget is None:
            budget = min(DEFAULT_ACTIVE_BUDGET, judge["item_id"].nunique())
        drawn = draw_active_queue(judge, budget=budget, seed=seed, slices=slices)
        return self.store.save_label_queue(self.task, list(zip(drawn.item_ids, drawn.probabilities)), seed=seed,
                                           budget=budget, n_total=drawn.n_total)


def require_item(item_id: object) -> str:
    """An item id as the store keeps it: text or a whole number, never empty (None is no id)."""
    if isinstance(item_id, (int, np.integer)) and not isinstance(item_id, (bool, np.bool_)):
        return str(int(item_id))
    if not isinstance(item_id, str) or not item_id.strip():
        raise InputError(Problem("labeler", None, "item_id", f"an item id is required, got {shown(item_id)}"))
    return item_id


SEED_RANGE = (-(2 ** 63), 2 ** 63 - 1)  # what both stores hold (a 64-bit integer)


def require_seed(seed: object) -> int:
    if isinstance(seed, (bool, np.bool_)) or not isinstance(seed, (int, np.integer)) \
            or not SEED_RANGE[0] <= int(seed) <= SEED_RANGE[1]:
        raise InputError(Problem("labeler", None, "seed", f"the seed must be a whole number between {SEED_RANGE[0]} "
                                 f"and {SEED_RANGE[1]}, got {shown(seed)}"))
    return int(seed)


def shown(value: object) -> str:
    """`repr` of untrusted text, cut short: control characters come out escaped, never raw."""
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."


def require_rater(rater: object) -> str:
    """A rater id is required (labels without one cannot be used for agreement or audits), and it is
    normalised (case, spaces) so "Alice ", "alice" and "ALICE" are one rater."""
    text = " ".join(str(rater).split()).casefold() if rater is not None else ""
    if not text:
        raise InputError(Problem("labeler", None, "rater", "enter your rater id (e.g. your initials) before labeling"))
    return text


def remembered_rater(path: str | Path) -> str:
    """The rater id last used on this machine (kept beside the store), or "" when there is none."""
    try:
        return require_rater(Path(path).read_text(encoding="utf-8"))
    except (OSError, InputError):
        return ""


def remember_rater(path: str | Path, rater: str) -> None:
    try:
        Path(path).write_text(rater, encoding="utf-8")
    except OSError:
        pass  # a preference, never a reason to stop labeling


def write_csv(export: pd.DataFrame, path: str | Path) -> Path:
    """Write an export frame as UTF-8 CSV (with BOM so spreadsheet apps read Japanese correctly)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    export.to_csv(path, index=False, encoding="utf-8-sig")
    return path
