"""A small migration project around the bundled drift demo log, for the refresh and cycle tests:
an evaluation set of 48 bundled items, the demo log (or its stable first four weeks) under logs/,
and replay/ models that answer every item and every logged request: the baseline with the
reference (or the logged answer), the candidate with a third of it, the successor like the baseline."""
from __future__ import annotations

import gzip
import json
from pathlib import Path

from workbench.project.lookup import bundled

STABLE_UNTIL = "2026-11-02"  # the demo log's new product line starts this week


def demo_log() -> list[dict]:
    with gzip.open(bundled("data/drift_demo_production.jsonl.gz"), "rt", encoding="utf-8") as handle:
        return [json.loads(line) for line in handle if line.strip()]


def eval_items(per_cell: int = 12) -> list[dict]:
    rows = [json.loads(line) for line in bundled("data/support_reviews.jsonl").read_text(encoding="utf-8").splitlines()
            if line.strip()]
    return [r for r in rows if int(r["item_id"][-3:]) <= per_cell]


def write_jsonl(path: Path, rows: list[dict]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")
    return path


def make_project(root: Path, *, stable: bool = False, lifecycle: str | None = None, cycle: str = "") -> Path:
    items, log = eval_items(), demo_log()
    if stable:
        log = [r for r in log if r["timestamp"] < STABLE_UNTIL]
    write_jsonl(root / "data" / "eval.jsonl", items)
    write_jsonl(root / "logs" / ("stable.jsonl" if stable else "prod.jsonl"), log)

    def replay(name: str, answer) -> None:
        rows = [{"item_id": it["item_id"], "response": answer(it["reference"])} for it in items]
        rows += [{"item_id": r["request_id"], "response": answer(r["response"])} for r in demo_log()]
        write_jsonl(root / name, rows)

    replay("baseline.jsonl", lambda text: text)
    replay("candidate.jsonl", lambda text: text[: max(8, len(text) // 3)])
    replay("successor.jsonl", lambda text: text)
    (root / "params.toml").write_text(
        'report_name = "migration"\ndataset = "data/eval.jsonl"\nbaseline = "replay/baseline.jsonl"\n'
        'baseline_prompt = ""\ncandidates = ["replay/candidate.jsonl"]\ncandidate_prompts = [""]\njudge = ""\n'
        'metrics = ["chrf", "length_chars"]\nsample_size = ""\nlifecycle_file = "lifecycle.toml"\nbootstrap_resamples = 200\n'
        'gate = { min_items = 10, metrics = { chrf = { max_drop = 5.0, higher_is_better = true } } }\n',
        encoding="utf-8")
    (root / "lifecycle.toml").write_text(lifecycle if lifecycle is not None else
                                         'checked = 2026-11-01\n\n[models."replay/baseline.jsonl"]\nreleased = 2025-01-01\n',
                                         encoding="utf-8")
    (root / "cycle.toml").write_text(
        'production = "logs/*.jsonl"\ntoday = "2026-11-16"\ndrift_notebook = false\nmax_new_items = 12\n'
        'drift = { window = "week", signals = ["length", "language", "vocabulary"], id_field = "request_id" }\n' + cycle,
        encoding="utf-8")
    return root
