"""Blind pair labeler: a rater picks the better of two responses without knowing which model wrote which.

Every choice is committed to the store (synchronous=FULL) before the next item is shown; if the
write fails the item stays on screen with the error. The state on screen (current item, progress)
is rebuilt from the label log, so a restarted kernel resumes exactly where the rater stopped.

Keyboard: ipywidgets has no key events. With `ipyevents` installed (its wheel ships a prebuilt
JupyterLab extension, so it works offline without a build) keys are read while the pointer is over
the item panel; ipyevents stops those key events, so JupyterLab's notebook shortcuts do not fire.
Without ipyevents a small text box takes the same keys (type one and press Enter).
"""
from __future__ import annotations

import html
from pathlib import Path
from typing import Any, Callable

import pandas as pd

from workbench import labels as lab
from workbench.comparison.compare import prediction_powered_win_rate
from workbench.errors import WorkbenchError
from workbench.judges import candidate_score
from workbench.project.lookup import is_database_url
from workbench.stats import StatsInputError, labels_needed
from workbench.stats.agreement import agreement_table
from workbench.comparison.defaults import DEFAULT_GATE

KEYS: dict[str, str] = {"1": "left", "2": "right", "3": "tie", "4": "both_bad", "s": "skip", "u": "undo", "b": "back"}
CHOICE_TEXT = {"left": "Response 1 is better", "right": "Response 2 is better", "tie": "Tie",
               "both_bad": "Both bad", "skip": "Skipped"}
_BOX = ("white-space:pre-wrap;word-break:break-word;border:1px solid #ccc;border-radius:4px;"
        "padding:8px;max-height:420px;overflow:auto;font-family:var(--jp-content-font-family,sans-serif)")


# What the rater is asked for items of a known task (others: "Task: <name>. Which response does this task better?")
TASK_QUESTIONS = {
    "support_reply": "Task: reply to this customer message. Which response is the better reply?",
    "review_summary": "Task: summarise this product review. Which response is the better summary of the review "
                      "below?",
}


def shown_text(text: str) -> str:
    """A response as shown to raters: line endings unified, trailing spaces per line and leading and
    trailing blank space removed, on both sides alike."""
    lines = str(text).replace("\r\n", "\n").replace("\r", "\n").split("\n")
    return "\n".join(line.rstrip() for line in lines).strip()


def rater_file(store_path: str | Path) -> Path:
    """Where the last rater id on this machine is kept: beside a SQLite store; in the home folder for a
    server store (a URL has no folder, and every store on that server is the same team's)."""
    if is_database_url(store_path):
        return Path.home() / ".workbench_last_rater"
    return Path(store_path).parent / "last_rater"


def _import_ipyevents() -> Any | None:
    try:
        import ipyevents
    except ImportError:
        return None
    return ipyevents


class PairLabeler:
    """Blind A/B labeler over `pairs` (item_id, input, response_a, response_b [, model_a, model_b]).

    `raters` + `overlap` spread items over raters (each item to `overlap` of them); leave `raters`
    out and every rater labels every item. `keyboard` is "auto" (ipyevents when installed, else a
    shortcut text box), "ipyevents", "text" or "none". Display the labeler as a cell's last value.

    `order`: "uniform" (every item, in a seeded random order) or "active": a queue of about `budget`
    items drawn where the judge (`judge` with choice_ab / choice_ba) is least trustworthy, each with
    its recorded probability, so the report's estimate stays unbiased however far raters get. The
    first kernel to open a task in active order draws its queue; every later one labels from it.
    """

    def __init__(self, store_path: str | Path, task: str, pairs: pd.DataFrame, rater: str | None = None,
                 seed: int = 0, overlap: int | None = None, raters: list[str] | None = None,
                 model_a: str | None = None, model_b: str | None = None, keyboard: str = "auto",
                 guidance: str = "", show_reference: bool = False, judge: pd.DataFrame | None = None,
                 gate_threshold: float | None = None, order: str = "uniform", budget: float | None = None,
                 min_labels: int | None = None):
        import ipywidgets as w

        self._w = w
        self.pairs = lab.validate_pairs(pairs, model_a, model_b).set_index("item_id", drop=False)
        self.model_a = str(self.pairs["model_a"].iloc[0]) if len(self.pairs) else str(model_a)
        self.model_b = str(self.pairs["model_b"].iloc[0]) if len(self.pairs) else str(model_b)
        self.seed = int(seed)
        self.raters = list(raters) if raters else None
        self.overlap = overlap
        self.log = lab.LabelLog(store_path, task, items=self.pairs.index,  # no click can label another item or pair
                                models=(self.model_a, self.model_b) if len(self.pairs) else None)
        self.guidance = guidance
        # the judge's verdicts (item_id, choice A/B/tie) and the gate's win-rate bound: "how many more
        # labels" after each click (never which model is which, nor how often the rater agrees with the
        # judge: that would anchor raters to the judge whose errors their labels exist to find;
        # `judge_agreement` is for label_analysis.ipynb). Nothing is decided before `min_labels` labels.
        self.judge = None if judge is None else judge.set_index(judge["item_id"].astype(str))["choice"]
        self.gate_threshold = gate_threshold
        if min_labels is None:
            min_labels = DEFAULT_GATE["min_items"]
        self.min_labels = int(min_labels)
        self.show_reference = show_reference and "reference" in self.pairs.columns
        self._rater_file = rater_file(store_path)
        self._check_task_models()
        self.order = order
        queue = self.log.queue(order, judge, budget=budget, seed=self.seed,
                               slices=self.pairs["slice"] if "slice" in self.pairs.columns else None)
        self.label_queue = None if queue is None else {"queue": queue, "queue_size": len(queue)}
        # the items this task labels, in the order raters see them (uniform order: shuffled per seed later)
        self.items = list(self.pairs.index) if queue is None else [i for i, _ in queue if i in self.pairs.index]
        self.rater: str | None = None
        self.queue: list[str] = []
        self.current_item: str | None = None
        self._decided: dict[str, dict[str, Any]] = {}
        self._state = lab.RaterState()

        # One HTML widget for progress, input and both responses: a single model update, so the
        # screen never shows one item's input beside another item's responses, even for a moment.
        self.view = w.HTML().add_class("wb-view")
        self.buttons = {
            "left": w.Button(description="Response 1 better", tooltip="key 1", button_style="info"),
            "right": w.Button(description="Response 2 better", tooltip="key 2", button_style="info"),
            "tie": w.Button(description="Tie", tooltip="key 3"),
            "both_bad": w.Button(description="Both bad", tooltip="key 4", button_style="warning"),
            "skip": w.Button(description="Skip", tooltip="key s"),
            "back": w.Button(description="Back", tooltip="key b", icon="arrow-left"),
            "undo": w.Button(description="Undo", tooltip="key u", icon="undo"),
        }
        for action, button in self.buttons.items():
            button.on_click(self._on_click(action))
        self.note = w.Textarea(placeholder="Optional note, saved with your next choice",
                               layout=w.Layout(width="100%", height="3em")).add_class("wb-note")
        self.status = w.HTML().add_class("wb-status")
        self.feedback = w.HTML().add_class("wb-feedback")
        self.keys_hint = w.HTML()
        self.item_panel = w.VBox([
            self.view,
            w.HBox([self.buttons[k] for k in ("left", "right", "tie", "both_bad")]),
            w.HBox([self.buttons[k] for k in ("skip", "back", "undo")]), self.keys_hint,
        ]).add_class("wb-item-panel")
        self.rater_box = w.Text(description="Rater id", placeholder="e.g. your initials",
                                value=lab.remembered_rater(self._rater_file)).add_class("wb-rater")
        self.start_button = w.Button(description="Start labeling", button_style="primary")
        self.start_button.on_click(lambda _b: self.start(self.rater_box.value))
        self.widget = w.VBox([self.status]).add_class("wb-labeler")
        self._keyboard = self._make_keyboard(keyboard)
        self.start(rater or self.rater_box.value)

    # ---- setup ---------------------------------------------------------------------------------
    def _check_task_models(self) -> None:
        others = self.log.store.label_models(self.log.task) - {self.model_a, self.model_b}
        if others:
            raise lab.InputError(lab.Problem(
                "labeler", None, "task", "this task already holds labels comparing another pair of answers; "
                "name a new task for this comparison (the notebook's `task` parameter)"))

    def _make_keyboard(self, mode: str) -> Any:
        w = self._w
        if mode not in ("auto", "ipyevents", "text", "none"):
            raise lab.InputError(lab.Problem("labeler", None, "keyboard", f"unknown keyboard mode {mode!r}"))
        events = _import_ipyevents() if mode in ("auto", "ipyevents") else None
        if mode == "ipyevents" and events is None:
            raise lab.InputError(lab.Problem("labeler", None, "keyboard", "ipyevents is not installed"))
        keys = "1 / 2 / 3 / 4 = Response 1 / Response 2 / tie / both bad, s = skip, b = back, u = undo"
        if events is not None:
            listener = events.Event(source=self.item_panel, watched_events=["keydown"])
            listener.on_dom_event(self._on_key_event)
            self.keys_hint.value = f"<small>Keys (pointer over this panel): {keys}</small>"
            return listener
        if mode == "none":
            return None
        box = w.Text(placeholder="shortcut + Enter", continuous_update=False,
                     layout=w.Layout(width="12em")).add_class("wb-shortcut")
        box.observe(self._on_shortcut_text, names="value")
        self.keys_hint.value = f"<small>Type a key in the box and press Enter: {keys}</small>"
        self.item_panel.children = (*self.item_panel.children, box)
        return box

    def start(self, rater: str | None) -> bool:
        """Begin (or resume) labeling as `rater`; an empty id shows a message and labels nothing."""
        try:
            self.rater = lab.require_rater(rater)
            self.queue = self._rater_queue(self.rater, [lab.require_rater(r) for r in self.raters] if self.raters
                                           else None)
        except WorkbenchError as exc:
            self.rater = None
            self._show_error(exc)
            self.widget.children = (self.status, self.rater_box, self.start_button)
            return False
        lab.remember_rater(self._rater_file, self.rater)
        self._state = lab.RaterState()
        self._refresh()
        self.current_item = lab.next_item(self.queue, self._decided)
        self.widget.children = (self.item_panel, self.note, self.status, self.feedback)
        self.status.value = ""
        self._render()
        return True

    # ---- actions (buttons, keys and tests all come through here) -------------------------------
    def choose(self, action: str) -> int | None:
        """Record `action` (left/right/tie/both_bad/skip) for the item on screen, then move on.
        The label is committed before anything on screen changes; returns its label id."""
        if not self._ready() or self.current_item is None:
            return None
        item = self.current_item
        left, right = self.sides(item)
        try:
            label_id = self.log.record(item, self.rater, left, right, action, self.seed, self.note.value)
        except Exception as exc:  # the write failed: stay on this item and say so
            self._show_error(exc)
            return None
        self.note.value = ""
        self._refresh()
        self.current_item = lab.next_item(self.queue, self._decided, after=item)
        self.status.value = f"Saved: {CHOICE_TEXT[action]} (label #{label_id})."
        self._render()
        return label_id

    def undo(self) -> str | None:
        """Cancel this rater's latest decision and show that item again."""
        if not self._ready():
            return None
        try:
            undone = self.log.undo_last(self.rater, self.seed)
        except Exception as exc:
            self._show_error(exc)
            return None
        if undone is None:
            self.status.value = "Nothing to undo."
            return None
        self._refresh()
        self.current_item = undone[1]
        earlier = self._decided.get(self.current_item)
        self.status.value = ("Undone. This item has no answer now." if earlier is None
                             else f"Undone. This item's earlier answer is back: {CHOICE_TEXT[earlier['action']]}.")
        self._render()
        return undone[1]

    def back(self) -> str | None:
        """Show the previous item of the queue (its current answer is shown; choosing again replaces it)."""
        if not self._ready() or not self.queue:
            return None
        if self.current_item is None:
            self.current_item = self.queue[-1]
        elif self.queue.index(self.current_item) == 0:
            self.status.value = "This is the first item."
            return self.current_item
        else:
            self.current_item = self.queue[self.queue.index(self.current_item) - 1]
        self.status.value = ""
        self._render()
        return self.current_item

    def act(self, action: str) -> None:
        """One user action by name: a decision (left/right/tie/both_bad/skip), back or undo."""
        if action == "undo":
            self.undo()
        elif action == "back":
            self.back()
        else:
            self.choose(action)

    def handle_key(self, key: str) -> None:
        action = KEYS.get((key or "").strip().lower())
        if action is not None:
            self.act(action)

    # ---- state ---------------------------------------------------------------------------------
    def sides(self, item_id: str) -> tuple[str, str]:
        return lab.sides(self.seed, item_id, self.rater or "", self.model_a, self.model_b)

    def progress(self) -> pd.DataFrame:
        """Progress of every rater known (the rater list, or everyone who labeled this task)."""
        current = self.log.current()
        raters = self.raters or sorted(set(current["rater"]) | ({self.rater} if self.rater else set()))
        queues = {r: self._rater_queue(r, self.raters) for r in raters}
        return lab.progress(current, queues)

    def _rater_queue(self, rater: str, raters: list[str] | None) -> list[str]:
        return lab.rater_queue(self.items, rater, self.seed, raters, self.overlap, shuffle=self.label_queue is None)

    def export(self) -> pd.DataFrame:
        return lab.export_frame(self.log.current(), self.model_a, self.model_b)

    def agreement(self, judge: pd.DataFrame | None = None) -> pd.DataFrame:
        """Raw agreement, n and Cohen's kappa per rater pair and against the majority, saying when kappa
        is degenerate; with `judge` (item_id, choice) the judge joins as a non-voting rater."""
        export = self.export()[["item_id", "rater", "choice"]]
        export = export[export["choice"].isin(lab.RATED_CHOICES)]
        non_voting: tuple[str, ...] = ()
        if judge is not None:
            export = pd.concat([export, judge[["item_id", "choice"]].assign(rater="judge")], ignore_index=True)
            non_voting = ("judge",)
        return agreement_table(export, label="choice", non_voting=non_voting)

    def close(self) -> None:
        self.widget.close()
        self.log.close()

    def _repr_mimebundle_(self, **kwargs: Any) -> Any:
        return self.widget._repr_mimebundle_(**kwargs)

    # ---- internals -----------------------------------------------------------------------------
    def _ready(self) -> bool:
        if self.rater is None:
            self.status.value = "<b style='color:#b00'>Enter your rater id first.</b>"
            return False
        return True

    def _refresh(self) -> None:
        """Fold in the rater's new rows (also those another kernel wrote for this rater)."""
        self._state.apply(self.log.rows_after(self.rater, self._state.last_label_id))
        self._decided = self._state.effective

    def _on_click(self, action: str) -> Callable[[Any], None]:
        return lambda _button: self.act(action)

    def _on_key_event(self, event: dict[str, Any]) -> None:
        if event.get("type") == "keydown" and not event.get("repeat") and not (
                event.get("ctrlKey") or event.get("metaKey") or event.get("altKey")):
            self.handle_key(str(event.get("key", "")))

    def _on_shortcut_text(self, change: dict[str, Any]) -> None:
        if change["new"]:
            key = change["new"]
            self._keyboard.value = ""
            self.handle_key(key)

    def _show_error(self, exc: BaseException) -> None:
        problems = getattr(exc, "problems", None)  # InputError: the widget is the context, show the messages
        text = "; ".join(p if isinstance(p, str) else p.message for p in problems) if problems else str(exc)
        self.status.value = f"<b style='color:#b00'>{html.escape(text)}</b>"

    def _render(self) -> None:
        for key in ("left", "right", "tie", "both_bad", "skip"):
            self.buttons[key].disabled = self.current_item is None
        self.view.value = self._view_html()
        self.feedback.value = self._feedback_html()

    def judge_agreement(self) -> tuple[int, int]:
        """(agreed, compared): this rater's current labels that match the judge ("both bad" = tie).
        For analysis only: never shown on the rater's screen."""
        if self.judge is None:
            return 0, 0
        agreed = compared = 0
        for item, row in self._decided.items():
            if row["action"] == "skip" or not isinstance(self.judge.get(item), str):
                continue
            winner = row.get("winner_model")
            mine = "A" if winner == self.model_a else "B" if winner == self.model_b else "tie"
            compared += 1
            agreed += int(mine == self.judge[item])
        return agreed, compared

    def labels_needed(self) -> Any:
        """The stopping rule over every rater's labels so far (prediction-powered, see stats.ppi; in
        active order weighted by the queue, and at most the queue's length)."""
        if self.judge is None or self.gate_threshold is None:
            return None

        export = self.export()
        try:
            ppi, _ = prediction_powered_win_rate(self.judge.map(candidate_score),
                                                 export[export["choice"].isin(lab.RATED_CHOICES)], self.label_queue)
        except StatsInputError:
            return None
        if ppi is None:
            return None
        return labels_needed(ppi, self.gate_threshold, min_labels=self.min_labels,
                             max_labels=None if self.label_queue is None else self.label_queue["queue_size"])

    def _feedback_html(self) -> str:
        parts = []
        advice = self.labels_needed()
        if advice is not None:
            parts.append("All raters together have labelled enough for the gate to decide; you may stop."
                         if advice.decided else f"About {advice.more_labels} more labels (all raters together) would "
                         "let the gate decide." if advice.more_labels else "More labels may or may not decide the gate.")
        return "".join(f"<div style='color:#555'><small>{html.escape(p)}</small></div>" for p in parts)

    def _task_html(self, row: pd.Series) -> str:
        """What the rater judges for this item's task (a bare review means: judge its summaries)."""
        task = row["task"] if "task" in row.index else None
        if not isinstance(task, str) or not task.strip():
            return ""
        asked = TASK_QUESTIONS.get(task.strip(), f"Task: {task.strip().replace('_', ' ')}. Which response does "
                                   "this task better for the input below?")
        return f"<div class='wb-task' style='margin-top:4px'>{html.escape(asked)}</div>"

    def _reference_html(self, row: pd.Series) -> str:
        parts = []
        for column, title in (("instruction", "Instruction"), ("reference", "Reference answer")):
            if column in row.index and isinstance(row[column], str) and row[column].strip() and (
                    column == "instruction" or self.show_reference):
                parts.append(f"<div class='wb-{column}' style='margin-top:4px'><b>{title}</b>"
                             f"<div class='wb-text' style='{_BOX}'>{html.escape(row[column])}</div></div>")
        return "".join(parts)

    def _view_html(self) -> str:
        done = sum(1 for i in self.queue if i in self._decided)
        skipped = sum(1 for i in self.queue if self._decided.get(i, {}).get("action") == "skip")
        where = (f"item {self.queue.index(self.current_item) + 1} of {len(self.queue)}"
                 if self.current_item is not None else f"{len(self.queue)} items")
        # Blind: nothing on the rater's screen names a model (task names do, so they are not shown).
        header = (f"<div class='wb-progress'>rater <b>{html.escape(self.rater or '')}</b> · {where} · labeled"
                  f" {done - skipped}, skipped {skipped}, remaining {len(self.queue) - done}</div>")
        if self.guidance:
            header += f"<div class='wb-guidance' style='margin-top:4px'><b>{html.escape(self.guidance)}</b></div>"
        if self.current_item is None:
            return (f"{header}<div class='wb-input wb-done'><b>All {len(self.queue)} items are done</b>"
                    f" ({skipped} skipped). Use Back to review or change an answer.</div>")
        row = self.pairs.loc[self.current_item]
        # the same normalisation on both sides: a side's habit (a leading space) must not give it away
        texts = {self.model_a: shown_text(row["response_a"]), self.model_b: shown_text(row["response_b"])}
        left, right = self.sides(self.current_item)
        previous = self._decided.get(self.current_item)
        answer = (f"<div class='wb-answer' style='color:#555'>Your current answer: {CHOICE_TEXT[previous['action']]}"
                  " (choose again to change it)</div>") if previous else ""
        side = "<div class='wb-{cls}' style='flex:1 1 0;min-width:0'><b>{title}</b><div class='wb-text' style='{box}'>{text}</div></div>"
        return (f"{header}{self._task_html(row)}<div class='wb-input' style='margin-top:6px'><div><b>Input</b>"
                f" <small class='wb-item-id'>{html.escape(self.current_item)}</small></div>"
                f"<div class='wb-text' style='{_BOX}'>{html.escape(row['input'])}</div>{self._reference_html(row)}"
                f"{answer}</div>"
                "<div style='display:flex;gap:12px;margin-top:6px'>"
                + side.format(cls="left", title="Response 1", box=_BOX, text=html.escape(texts[left]))
                + side.format(cls="right", title="Response 2", box=_BOX, text=html.escape(texts[right]))
                + "</div>")
