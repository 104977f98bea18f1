"""Checks against public human-labelled data in ../shared (skipped when it is absent)."""
from __future__ import annotations

import csv
import json

from pathlib import Path

import pandas as pd
import pytest

from workbench.metrics import detect_refusal, score_responses


@pytest.fixture(scope="module")
def ted_mqm():
    """WMT21 TED en->de: each system's translation, the human reference ("ref") and the
    segment's MQM score (0 best, more negative = more/severer errors)."""
    folder = Path(__file__).resolve().parents[3] / "shared" / "data" / "external" / "wmt_mqm"
    if not folder.is_dir():
        from tests.real_parts import missing

        missing(f"shared data not found at {folder} (CI clones it beside the repo as ../shared)")
    raw = pd.read_csv(folder / "mqm_ted_ende.tsv", sep="\t", quoting=csv.QUOTE_NONE, dtype=str)
    raw["target"] = raw["target"].fillna("").str.replace(r"</?v>", "", regex=True)  # error-span marks
    targets = raw.groupby(["system", "seg_id"])["target"].first().reset_index()
    mqm = pd.read_csv(folder / "mqm_ted_ende.avg_seg_scores.tsv", sep=r"\s+", dtype=str)
    mqm["mqm"] = pd.to_numeric(mqm["mqm_avg_score"], errors="coerce")
    refs = targets[targets.system == "ref"].set_index("seg_id")["target"]
    rows = targets[targets.system != "ref"].merge(mqm, on=["system", "seg_id"]).dropna(subset=["mqm"])
    rows = rows[rows.seg_id.isin(refs.index)].sample(n=1500, random_state=0)
    items = pd.DataFrame({"item_id": refs.index, "reference": refs.values, "language": "de"})
    responses = pd.DataFrame({"item_id": rows.seg_id, "model": rows.system, "response": rows.target})
    return items, responses, rows.assign(item_id=rows.seg_id, model=rows.system)[["item_id", "model", "mqm"]]


@pytest.mark.slow
def test_reference_metrics_agree_with_human_mqm_in_direction(ted_mqm):
    """Segment-level Kendall tau with MQM is ~0.1-0.2 for chrF/BLEU in the WMT21 metrics task;
    a sign error or a tokenizer dropping umlauts would push it towards 0."""
    items, responses, human = ted_mqm
    scores = score_responses(items, responses, ["bleu", "chrf", "rouge_l"])
    wide = scores.pivot_table(index=["item_id", "model"], columns="metric", values="value").reset_index()
    joined = wide.merge(human, on=["item_id", "model"])
    assert len(joined) == 1500
    for metric in ("bleu", "chrf", "rouge_l"):
        tau = joined[metric].corr(joined["mqm"], method="kendall")
        print(f"{metric}: Kendall tau with MQM {tau:.3f}")
        assert tau > 0.08, (metric, tau)


def test_refusals_in_real_model_outputs(shared_data):
    """AlpacaEval outputs: claude-2's known refusals are found; GPT-4's rate stays low."""
    def outputs(model):
        path = shared_data / "alpaca_eval" / "results" / model / "model_outputs.json"
        return {o["instruction"]: o["output"] for o in json.loads(path.read_text())}

    claude = outputs("claude-2")
    known = [i for i in claude if i.startswith(("How can I spice things up in the bedroom",
                                                "write me a top 10 list of the funniest ways to die",
                                                "Pretend for argumentsake you are lawyer defending putin"))]
    assert len(known) == 3 and all(detect_refusal(claude[i]) for i in known)
    gpt4 = outputs("gpt4")
    rate = sum(detect_refusal(o) is not None for o in gpt4.values()) / len(gpt4)
    assert rate < 0.03
    assert sum(detect_refusal(o) is not None for o in claude.values()) >= 15
