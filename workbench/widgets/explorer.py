"""Side-by-side explorer widget: browse items with every model's response, diffs, scores and
verdicts, in ipywidgets.

The widget holds navigation, filters and the HTML view of the current item only; everything
else (validation, indexes, filters, escaped HTML) is `workbench.widgets.explorer_data`, which
reports use without any widget.
"""
from __future__ import annotations

from contextlib import contextmanager
from typing import Any, Iterator, Mapping, Sequence

import numpy as np
import pandas as pd

from workbench.errors import InputError
from workbench.metrics import metric_info
from workbench.widgets.explorer_data import EXPLORER_CSS, ExplorerData, Filters, esc

_NEXT_KEYS = frozenset({"ArrowRight", "j", "n"})  # not Up/Down: they scroll the page
_PREV_KEYS = frozenset({"ArrowLeft", "k", "p"})
_FALLBACK_CLASS = "wb-static-fallback"


class _NoFilter:
    """Value of a filter dropdown's first option: "(all)", "(any)" or "(none)".

    Why not None: for an ipywidgets selection None means "nothing selected", so selecting an
    option whose value is None blanks the dropdown (its index becomes None), which is how
    "reset filters" left every dropdown empty."""

    def __repr__(self) -> str:
        return "NO_FILTER"


NO_FILTER = _NoFilter()


def _choice(dropdown: Any) -> Any:
    """The dropdown's value for the filters: None for its "(all)" option (or a blank selection)."""
    return None if dropdown.value is NO_FILTER else dropdown.value


def _select_all(dropdown: Any) -> None:
    dropdown.value = NO_FILTER


# ---- the widget --------------------------------------------------------------------------------
class Explorer:
    """Interactive side-by-side explorer (ipywidgets) over `ExplorerData`.

    Display it with `display(explorer)` or as a cell's last expression. Besides the live widget
    this emits the current item as static HTML, hidden while the widget renders (the widget
    carries the CSS that hides it) and visible in exported HTML, where widgets cannot load
    offline. Reports that want no widget at all use `render_item_html` or `ExplorerData`.

    Keyboard: ipywidgets has no global key events. When the optional `ipyevents` package is
    installed, arrow keys and j/k (n/p) navigate while the pointer is over the item view;
    otherwise the buttons are focusable (Tab to "next", then Enter/Space repeats) and the
    "go to" box jumps on Enter. State for code and tests: `current_id`, `filtered_ids`,
    `filters`; actions: `next()`, `prev()`, `go_to(item_id)`, `handle_key(key)`.
    """

    def __init__(self, items_df: pd.DataFrame, responses_df: pd.DataFrame,
                 scores_df: pd.DataFrame | None = None, judgments_df: pd.DataFrame | None = None,
                 labels_df: pd.DataFrame | None = None, models: Sequence[str] | None = None, *,
                 higher_is_better: Mapping[str, bool] | None = None, page_size: int = 20,
                 combobox_limit: int = 1000):
        self._start(ExplorerData(items_df, responses_df, scores_df, judgments_df, labels_df, models, higher_is_better),
                    page_size, combobox_limit)

    def _start(self, data: ExplorerData, page_size: int, combobox_limit: int) -> None:
        self.data = data
        self.page_size = page_size
        self.combobox_limit = combobox_limit
        self.filters = self.data.validate(Filters())
        self.filtered_pos: np.ndarray = np.arange(self.data.n_items)
        self.current_pos: int | None = 0 if self.data.n_items else None
        self.message = ""
        self._busy = False
        self._build_widgets()
        self._refresh(list_changed=True)

    @classmethod
    def from_store(cls, store: Any, models: Sequence[str] | None = None, *, runs: Mapping[str, int] | None = None,
                   scores_df: pd.DataFrame | None = None, judgments_df: pd.DataFrame | None = None,
                   labels_df: pd.DataFrame | None = None, higher_is_better: Mapping[str, bool] | None = None,
                   **kwargs: Any) -> "Explorer":
        """The explorer over a store's runs without reading them: each of `models`' latest run on the
        newest dataset they all ran on (baseline first), or the given `runs` ({label: run id}). Responses
        are read one item at a time as they are shown, so a 100k-item run opens in half a second of CPU
        (docs/bench/scale.md). Keep the store open while the explorer is in use."""
        return cls._over(ExplorerData.from_store(store, models, runs=runs, scores_df=scores_df,
                                                 judgments_df=judgments_df, labels_df=labels_df,
                                                 higher_is_better=higher_is_better), **kwargs)

    @classmethod
    def _over(cls, data: ExplorerData, page_size: int = 20, combobox_limit: int = 1000) -> "Explorer":
        explorer = cls.__new__(cls)
        explorer._start(data, page_size, combobox_limit)
        return explorer

    @classmethod
    def from_result(cls, result: Any, **kwargs: Any) -> "Explorer":
        """The explorer over a pipeline result: the report's items, every arm's responses, scores,
        the judge's verdicts and the human labels, baseline first."""
        return cls(result.items, result.responses, models=[result.baseline, *result.candidates],
                   **evidence_frames(result), **kwargs)

    # ---- state ---------------------------------------------------------------------------------
    @property
    def current_id(self) -> str | None:
        return None if self.current_pos is None else str(self.data.item_ids[self.current_pos])

    @property
    def filtered_ids(self) -> list[str]:
        return list(self.data.item_ids[self.filtered_pos])

    def _index_in_filtered(self) -> int | None:
        if self.current_pos is None:
            return None
        i = int(np.searchsorted(self.filtered_pos, self.current_pos))
        return i if i < len(self.filtered_pos) and self.filtered_pos[i] == self.current_pos else None

    # ---- actions -------------------------------------------------------------------------------
    def next(self) -> None:
        """Move to the next item in the filter (also from an item outside it, by items_df order)."""
        i = int(np.searchsorted(self.filtered_pos, -1 if self.current_pos is None else self.current_pos, "right"))
        if i < len(self.filtered_pos):
            self._move(int(self.filtered_pos[i]))

    def prev(self) -> None:
        if self.current_pos is None:
            return
        i = int(np.searchsorted(self.filtered_pos, self.current_pos, "left")) - 1
        if i >= 0:
            self._move(int(self.filtered_pos[i]))

    def go_to(self, item_id: str) -> None:
        """Show `item_id`, even when the filters hide it (the status line says so)."""
        self._move(self.data.position(item_id))

    def handle_key(self, key: str) -> bool:
        """Navigate for a key name (DOM `KeyboardEvent.key`); True when the key was used."""
        if key in _NEXT_KEYS:
            self.next()
        elif key in _PREV_KEYS:
            self.prev()
        else:
            return False
        return True

    def render_item_html(self, item_id: str | None = None) -> str:
        """Static HTML of `item_id` (default: the current item) with the widget's view options."""
        item_id = self.current_id if item_id is None else item_id
        if item_id is None:
            return f'{EXPLORER_CSS}<div class="wb-explorer"><i>No item matches the filters.</i></div>'
        return self.data.render_item_html(item_id, sample_index=self.sample.value, diff=self.diff_toggle.value)

    def static_html(self) -> str:
        return self.render_item_html()

    _repr_html_ = static_html

    def _ipython_display_(self) -> None:
        from IPython.display import HTML, display

        display(self.widget)
        display(HTML(f'<div class="{_FALLBACK_CLASS}">{self.static_html()}</div>'))

    # ---- widgets -------------------------------------------------------------------------------
    def _build_widgets(self) -> None:
        import ipywidgets as w

        d = self.data
        narrow = {"description_width": "5.5em"}

        def button(description: str, icon: str, tooltip: str) -> Any:
            return w.Button(description=description, icon=icon, tooltip=tooltip, layout=w.Layout(width="auto"))

        def dropdown(description: str, options: Any, **kw: Any) -> Any:
            return w.Dropdown(description=description, options=options, style=narrow,
                              layout=w.Layout(width="17em"), **kw)

        def shown(flag: bool) -> dict:  # a control with nothing to choose is left out, not greyed
            return {} if flag else {"display": "none"}

        self.prev_button = button("prev", "arrow-left", "previous item (k, ←)")
        self.next_button = button("next", "arrow-right", "next item (j, →)")
        self.prev_page_button = button("page", "angle-double-left", "previous page of the list")
        self.next_page_button = button("page", "angle-double-right", "next page of the list")
        self.goto_box = w.Combobox(placeholder="go to item id (Enter)", ensure_option=False,
                                   continuous_update=False, layout=w.Layout(width="16em"))
        self.status = w.HTML()
        self.item_list = w.Select(options=[], rows=6, layout=w.Layout(width="100%"))
        self.candidate = dropdown("candidate", d.candidates or [None], value=self.filters.candidate,
                                  disabled=len(d.candidates) < 2)
        self.candidate.layout = w.Layout(width="17em", **shown(len(d.candidates) > 1))
        self.slice_column = dropdown("slice", [("(all)", NO_FILTER)] + [(c, c) for c in d.slice_columns])
        self.slice_value = dropdown("value", [("(all)", NO_FILTER)], disabled=True)
        has_metrics = bool(d.metrics and d.candidates)
        self.metric = dropdown("Δ metric", [("(none)", NO_FILTER)] + [(m, m) for m in d.metrics],
                               disabled=not has_metrics)
        self.delta_range = w.FloatRangeSlider(description="Δ range", min=-1.0, max=1.0, value=(-1.0, 1.0), step=0.01,
                                              continuous_update=False, disabled=True, readout_format=".3g",
                                              style=narrow, layout=w.Layout(width="30em"))
        has_judge = not d.judgments.empty and bool(d.candidates)
        self.verdict = dropdown("judge", [("(any)", NO_FILTER), ("candidate wins", "candidate_wins"),
                                          ("baseline wins", "baseline_wins"), ("tie", "tie"),
                                          ("orders disagree", "inconsistent")], disabled=not has_judge)
        self.disagree = w.Checkbox(description="judge ≠ humans", indent=False, layout=w.Layout(width="auto"),
                                   disabled=not has_judge or d.labels.empty)
        self.errors = dropdown("errors", [("(all)", NO_FILTER), ("with errors", "with_errors"),
                                          ("without errors", "without_errors")])
        self.search = w.Text(description="search", placeholder="text in input, responses, errors (Enter)",
                             continuous_update=False, style=narrow, layout=w.Layout(width="30em"))
        self.reset_button = button("reset filters", "times", "clear every filter")
        self.diff_toggle = w.Checkbox(description="diff vs baseline", value=True, indent=False,
                                      layout=w.Layout(width="auto"))
        self.sample = dropdown("sample", d.sample_indexes or [0], value=(d.sample_indexes or [0])[0],
                               disabled=len(d.sample_indexes) < 2)
        self.sample.layout.display = shown(len(d.sample_indexes) > 1).get("display")
        self.view = w.HTML()
        # Live widgets render this style, which hides the static fallback emitted beside them.
        hide_fallback = w.HTML(f"<style>.{_FALLBACK_CLASS}{{display:none}}</style>", layout=w.Layout(height="0px"))

        self.prev_button.on_click(lambda _: self.prev())
        self.next_button.on_click(lambda _: self.next())
        self.prev_page_button.on_click(lambda _: self._page(-1))
        self.next_page_button.on_click(lambda _: self._page(+1))
        self.reset_button.on_click(lambda _: self.reset_filters())
        self.goto_box.observe(self._on_goto, "value")
        self.item_list.observe(self._on_list, "value")
        self.slice_column.observe(self._on_slice_column, "value")
        self.metric.observe(self._on_metric, "value")
        self.candidate.observe(self._on_metric, "value")  # the Δ range depends on the candidate
        for wid in (self.slice_value, self.delta_range, self.verdict, self.disagree, self.errors, self.search):
            wid.observe(self._on_filter, "value")
        for wid in (self.diff_toggle, self.sample):
            wid.observe(lambda _: self._render(), "value")
        for wid in (self.slice_column, self.slice_value, self.metric, self.verdict, self.errors):
            wid.observe(self._keep_a_choice, "index")

        nav = w.HBox([self.prev_button, self.next_button, self.goto_box, self.prev_page_button,
                      self.next_page_button, self.status], layout=w.Layout(flex_flow="row wrap", align_items="center"))
        row = lambda *children, show=True: w.HBox(list(children), layout=w.Layout(  # noqa: E731
            flex_flow="row wrap", align_items="center", grid_gap="0 1em", **shown(show)))
        filters = w.VBox([row(self.slice_column, self.slice_value, self.errors, self.candidate),
                          row(self.metric, self.delta_range, show=has_metrics),
                          row(self.verdict, self.disagree, show=has_judge),
                          row(self.search, self.reset_button, self.diff_toggle, self.sample)])
        self.widget = w.VBox([hide_fallback, nav, filters, self.item_list, self.view])
        self._keyboard = self._attach_keyboard(self.view)

    def _attach_keyboard(self, source: Any) -> Any:
        try:
            from ipyevents import Event  # optional: only when the user has it installed
        except ImportError:
            return None
        event = Event(source=source, watched_events=["keydown"])
        event.on_dom_event(lambda e: self.handle_key(str(e.get("key", ""))))
        return event

    # ---- widget callbacks ----------------------------------------------------------------------
    @contextmanager
    def _quiet(self) -> Iterator[None]:
        """While the explorer updates its own widgets, their observers must not react."""
        previous, self._busy = self._busy, True
        try:
            yield
        finally:
            self._busy = previous

    def _on_goto(self, change: dict) -> None:
        value = str(change["new"] or "").strip()
        if self._busy or not value:
            return
        try:
            self.go_to(value)
        except InputError:
            self.message = f"no item with id {value!r}"
            self._render_status()

    def _on_list(self, change: dict) -> None:
        if not self._busy and change["new"] is not None and change["new"] != self.current_id:
            self._move(self.data.position(change["new"]))

    def _keep_a_choice(self, change: dict) -> None:
        """A filter dropdown set to None (nothing selected) shows its "(all)" choice instead of a blank."""
        if change["new"] is None and change["owner"].options:
            _select_all(change["owner"])

    def _on_slice_column(self, change: dict) -> None:
        if self._busy:
            return
        col = _choice(self.slice_column)
        with self._quiet():
            if col is None:
                self.slice_value.options, self.slice_value.disabled = [("(all)", NO_FILTER)], True
            else:
                counts = self.data.items[col].value_counts(dropna=True)
                self.slice_value.options = [("(all)", NO_FILTER)] + [(f"{v} ({counts[v]})", v)
                                                                     for v in counts.index[:200]]
                self.slice_value.disabled = False
            _select_all(self.slice_value)
        self._apply_widget_filters()

    def _on_metric(self, change: Any) -> None:
        if self._busy:
            return
        with self._quiet():
            self._update_delta_range()
        self._apply_widget_filters()

    def _update_delta_range(self) -> None:
        """Reset the Δ slider to the full range of the chosen metric's deltas (= no bound yet)."""
        metric = _choice(self.metric)
        self.delta_range.disabled = metric is None
        if metric is None:
            return
        d = self.data.delta(metric, self.candidate.value)
        lo, hi = (float(np.nanmin(d)), float(np.nanmax(d))) if np.isfinite(d).any() else (-1.0, 1.0)
        if hi - lo < 1e-9:
            lo, hi = lo - 1.0, hi + 1.0
        with self.delta_range.hold_sync():
            self.delta_range.min, self.delta_range.max = -1e300, 1e300  # never min > max on the way
            self.delta_range.min, self.delta_range.max = lo, hi
            self.delta_range.step = (hi - lo) / 200
            self.delta_range.value = (lo, hi)

    def _on_filter(self, _change: Any) -> None:
        if not self._busy:
            self._apply_widget_filters()

    def _apply_widget_filters(self) -> None:
        metric = _choice(self.metric)
        lo, hi = self.delta_range.value if metric is not None else (None, None)
        col, val = _choice(self.slice_column), _choice(self.slice_value)
        self.set_filters(Filters(
            candidate=self.candidate.value, slices={col: [val]} if col is not None and val is not None else {},
            metric=metric, delta_min=lo, delta_max=hi, verdict=_choice(self.verdict),
            disagreement=self.disagree.value, errors=_choice(self.errors), search=self.search.value))

    def set_filters(self, filters: Filters) -> None:
        """Apply `filters` (validated) without touching the filter widgets; stays on the current
        item when it still matches, else moves to the first match."""
        self.filters = self.data.validate(filters)
        self.filtered_pos = self.data.filter_positions(self.filters)
        if self._index_in_filtered() is None:
            self.current_pos = int(self.filtered_pos[0]) if len(self.filtered_pos) else None
        self.message = ""
        self._refresh(list_changed=True)

    def reset_filters(self) -> None:
        """Every filter back to its "(all)"/"(any)"/"(none)" choice; the candidate, sample and diff
        toggle are view options and stay."""
        with self._quiet():
            self.slice_value.options, self.slice_value.disabled = [("(all)", NO_FILTER)], True
            for dropdown in (self.slice_column, self.slice_value, self.metric, self.verdict, self.errors):
                _select_all(dropdown)
            self.delta_range.disabled = True
            self.disagree.value = False
            self.search.value = ""
        self._apply_widget_filters()

    def _page(self, step: int) -> None:
        n = len(self.filtered_pos)
        if not n:
            return
        i = self._index_in_filtered()
        i = int(np.searchsorted(self.filtered_pos, self.current_pos)) if i is None else i
        target = min(max((i // self.page_size + step) * self.page_size, 0), n - 1)
        self._move(int(self.filtered_pos[target]))

    def _move(self, pos: int) -> None:
        self.current_pos = pos
        self.message = ""
        self._refresh(list_changed=False)

    # ---- rendering -----------------------------------------------------------------------------
    def _refresh(self, list_changed: bool) -> None:
        with self._quiet():
            self._render_list(list_changed)
            self._render_status()
            self._render()

    def _render(self) -> None:
        if self.current_pos is None:
            self.view.value = self.render_item_html()
            return
        note = "" if self._index_in_filtered() is not None else "This item is outside the current filters."
        self.view.value = self.data.render_item_html(self.current_id, sample_index=self.sample.value,
                                                     diff=self.diff_toggle.value, note=note)

    def _filters_active(self) -> bool:
        return self.filters != self.data.validate(Filters(candidate=self.filters.candidate))

    def position_text(self) -> str:
        """Where the current item is, as a reader says it: "item 86 of 96 shown (filtered from 128)"."""
        n, total = len(self.filtered_pos), self.data.n_items
        i = self._index_in_filtered()
        shown = f"{n:,} shown (filtered from {total:,})" if self._filters_active() else f"{total:,}"
        if i is not None:
            return f"item {i + 1:,} of {shown}"
        if self.current_pos is None:
            return f"no item matches the filters (0 of {total:,} shown)"
        return f"item {self.current_id} is outside the filters ({n:,} of {total:,} shown)"

    def _render_status(self) -> None:
        n = len(self.filtered_pos)
        i = self._index_in_filtered()
        text = self.position_text()
        if self.message:
            text += f" · {self.message}"
        self.status.value = f"<span>{esc(text)}</span>"
        at_start = i == 0 if i is not None else self.current_pos is None or not (self.filtered_pos < self.current_pos).any()
        at_end = i == n - 1 if i is not None else self.current_pos is None or not (self.filtered_pos > self.current_pos).any()
        self.prev_button.disabled = bool(n == 0 or at_start)
        self.next_button.disabled = bool(n == 0 or at_end)

    def _render_list(self, list_changed: bool) -> None:
        n = len(self.filtered_pos)
        i = self._index_in_filtered()
        anchor = i if i is not None else min(int(np.searchsorted(self.filtered_pos, self.current_pos or 0)), max(n - 1, 0))
        start = anchor // self.page_size * self.page_size
        page = self.filtered_pos[start:start + self.page_size]
        options = [(self.data.item_label(int(p)), str(self.data.item_ids[p])) for p in page]
        if [v for _, v in options] != [v for _, v in self.item_list.options]:
            self.item_list.options = options
        self.item_list.value = self.current_id if i is not None else None
        if list_changed:  # the id typed before the filter changed would point at an item no longer listed
            self.goto_box.options = [str(x) for x in self.data.item_ids[self.filtered_pos[:self.combobox_limit]]]
            self.goto_box.value = ""  # (observers are quiet while rendering)
        self.prev_page_button.disabled = bool(start == 0)
        self.next_page_button.disabled = bool(start + self.page_size >= n)


def evidence_frames(result: Any) -> dict[str, Any]:
    """What a pipeline result adds to the responses: scores (with each metric's direction), the
    judge's verdicts and the human labels, as the explorer's keyword arguments."""
    verdicts = [j.verdicts.dropna(subset=["verdict"]) for j in result.judgments.values() if hasattr(j, "verdicts")]
    labels = list(result.labels.values())
    metrics = [m for m in result.scores["metric"].unique()] if len(result.scores) else []
    known = [m for m in metrics if not str(m).startswith("judge:")]
    info = metric_info(known) if known else None
    directions = {} if info is None else {m: bool(h) for m, h in zip(info["metric"], info["higher_is_better"])
                                          if h is not None and h == h}
    directions.update({m: True for m in metrics if str(m).startswith("judge:")})
    return {"scores_df": result.scores if len(result.scores) else None,
            "judgments_df": pd.concat(verdicts, ignore_index=True) if verdicts else None,
            "labels_df": pd.concat(labels, ignore_index=True) if labels else None,
            "higher_is_better": directions or None}
