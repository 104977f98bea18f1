"""Benchmark: scoring 10k tool-call answers (goal: <= 10 s on 2 cores).

    .venv/bin/python bench/bench_tool_scoring.py                       # 10k rows, ratio vs chrF
    .venv/bin/python bench/bench_tool_scoring.py --bfcl-checker DIR    # also BFCL's own checker, same rows

The rows are real BFCL v4 items (../shared/data/external/bfcl: simple_python, multiple, parallel,
parallel_multiple, irrelevance) cycled to 10k, each answered by a deterministic mix of right calls
and broken ones (wrong value, string for integer, missing argument, wrong tool, extra call, missing
call, text, unparseable arguments). "ours" is `score_responses` with every tool metric the items call
for (`app_metrics`: accuracy, name / key / value match, irrelevance, relevance, schema-valid
arguments): validation, joining and all seven metrics. The baseline in the same run is chrF
(`score_responses(..., ["chrf"])`) on the same 10k rows, texts being the readable calls against the
expected ones, so the ratio says what tool scoring costs next to the cheapest text metric. With
`--bfcl-checker` (an unpacked `bfcl-eval` wheel) it also times BFCL's `ast_checker` alone on the
same rows (one verdict per row, no frames). Each measurement runs in its own subprocess.
"""
from __future__ import annotations

import argparse
import json
import os
import random
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
BFCL = ROOT.parent / "shared" / "data" / "external" / "bfcl"
CATEGORIES = ("simple_python", "multiple", "parallel", "parallel_multiple", "irrelevance")


def _load() -> list[dict]:
    out = []
    for category in CATEGORIES:
        questions = [json.loads(line) for line in (BFCL / f"BFCL_v4_{category}.json").read_text().splitlines()]
        answers_file = BFCL / "possible_answer" / f"BFCL_v4_{category}.json"
        answers = ({a["id"]: a["ground_truth"] for a in map(json.loads, answers_file.read_text().splitlines())}
                   if answers_file.exists() else {})
        out += [{**q, "category": category, "ground_truth": answers.get(q["id"], [])} for q in questions]
    return out


def _answer(item: dict, rng: random.Random) -> tuple[str, list[dict] | None, str | None]:
    """(text, calls as [{name, arguments}] or None for a text answer, raw broken arguments or None)."""
    right = [{"name": name, "arguments": {p: next(v for v in vals if v != "") for p, vals in params.items()
                                          if any(v != "" for v in vals)}}
             for answer in item["ground_truth"] for name, params in answer.items()]
    if not right:  # irrelevance: mostly text, sometimes a call anyway
        if rng.random() < 0.7:
            return "I can't help with that using these tools.", None, None
        return "", [{"name": item["function"][0]["name"], "arguments": {}}], None
    kind = rng.choice(["right"] * 5 + ["value", "type", "missing", "tool", "extra", "drop", "text", "raw"])
    calls = json.loads(json.dumps(right))
    args = calls[0]["arguments"]
    first = next(iter(args), None)
    if kind == "value" and first:
        args[first] = f"{args[first]}x" if isinstance(args[first], str) else 12345
    elif kind == "type" and first:
        args[first] = str(args[first])
    elif kind == "missing" and first:
        del args[first]
    elif kind == "tool":
        calls[0]["name"] += "_v2"
    elif kind == "extra":
        calls.append(calls[0])
    elif kind == "drop" and len(calls) > 1:
        calls.pop()
    elif kind == "text":
        return "Here is what I found.", None, None
    elif kind == "raw":
        return "", calls, '{"' + (first or "x") + '": '
    return "", calls, None


def build(n: int, seed: int = 0):
    """(items, responses, raw rows for BFCL's checker) for n rows."""
    import pandas as pd

    from workbench.items.tool_calls import ToolCall

    rng = random.Random(seed)
    base = _load()
    items, responses, raw = [], [], []
    for k in range(n):
        item = base[k % len(base)]
        text, calls, broken = _answer(item, rng)
        tool_calls = () if calls is None else tuple(
            ToolCall.parse(c["name"], broken if broken is not None and i == 0 else c["arguments"])
            for i, c in enumerate(calls))
        item_id = f"{item['id']}#{k}"
        reference = " ; ".join(f"{name}({json.dumps(params, ensure_ascii=False)})"
                               for a in item["ground_truth"] for name, params in a.items())
        items.append({"item_id": item_id, "input": item["question"][0][-1]["content"], "tools": item["function"],
                      "expected_calls": item["ground_truth"], "reference": reference or "no call"})
        responses.append({"item_id": item_id, "model": "m", "response": text, "tool_calls": tool_calls})
        raw.append((item, tool_calls))
    return pd.DataFrame(items), pd.DataFrame(responses), raw


def measure(what: str, n: int, checker: str | None) -> dict:
    items, responses, raw = build(n)
    import pandas as pd  # noqa: F401  (imported by build; kept out of the timing)

    if what == "ours":
        from workbench.metrics import app_metrics, score_responses

        started = time.perf_counter()
        import jsonschema  # noqa: F401  (loading items with tools imports it already, to check their schemas)
        imported = time.perf_counter() - started
        metrics = app_metrics(items)
        started, cpu = time.perf_counter(), time.process_time()
        scores = score_responses(items, responses, metrics)
        seconds, cpu = time.perf_counter() - started, time.process_time() - cpu
        accuracy = scores[scores["metric"] == "tool_call_accuracy"]["value"].mean()
        return {"seconds": seconds, "cpu": cpu, "import_seconds": imported, "rows": n, "metrics": metrics,
                "tool_call_accuracy": float(accuracy)}
    if what == "chrf":
        from workbench.metrics import score_responses

        texts = responses.assign(response=[" ; ".join(c.pretty() for c in calls) or text for text, calls in
                                           zip(responses["response"], responses["tool_calls"])])
        started, cpu = time.perf_counter(), time.process_time()
        score_responses(items.assign(language="en"), texts.drop(columns=["tool_calls"]), ["chrf"])
        return {"seconds": time.perf_counter() - started, "cpu": time.process_time() - cpu, "rows": n}
    if what == "bfcl":
        import types

        stub = types.ModuleType("bfcl_eval.constants.model_config")
        stub.MODEL_CONFIG_MAPPING = {"workbench": types.SimpleNamespace(underscore_to_dot=False)}
        sys.modules["bfcl_eval.constants.model_config"] = stub
        sys.path.insert(0, checker)
        from bfcl_eval.constants.enums import Language
        from bfcl_eval.eval_checker.ast_eval.ast_checker import ast_checker

        started, cpu = time.perf_counter(), time.process_time()
        right = 0
        for item, calls in raw:
            if item["category"] == "irrelevance":
                right += not calls
                continue
            if not calls or any(c.arguments is None for c in calls):
                continue  # BFCL's decoder fails: wrong
            decoded = [{c.name: c.arguments} for c in calls]
            right += ast_checker(item["function"], decoded, item["ground_truth"], Language.PYTHON,
                                 item["category"], "workbench")["valid"]
        return {"seconds": time.perf_counter() - started, "cpu": time.process_time() - cpu, "rows": n,
                "accuracy": right / n}
    raise ValueError(what)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=10_000)
    parser.add_argument("--bfcl-checker", help="folder of an unpacked bfcl-eval wheel (pip download --no-deps "
                                               "bfcl-eval==2026.3.23; unzip)")
    parser.add_argument("--one", choices=["ours", "chrf", "bfcl"], help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.one:
        print(json.dumps(measure(args.one, args.n, args.bfcl_checker)))
        return
    if not BFCL.is_dir():
        sys.exit(f"no BFCL data at {BFCL}")
    results = {}
    for what in ["ours", "chrf"] + (["bfcl"] if args.bfcl_checker else []):
        command = [sys.executable, __file__, "--one", what, "--n", str(args.n)]
        if args.bfcl_checker:
            command += ["--bfcl-checker", args.bfcl_checker]
        out = subprocess.run(command, check=True, capture_output=True, text=True,
                             env={**os.environ, "PYTHONPATH": str(ROOT)})
        results[what] = json.loads(out.stdout.strip().splitlines()[-1])
    ours, chrf = results["ours"], results["chrf"]
    print(f"load average: {os.getloadavg()[0]:.1f}")
    print(f"tool scoring, {ours['rows']} rows, {len(ours['metrics'])} metrics ({', '.join(ours['metrics'])}): "
          f"{ours['seconds']:.2f} s wall, {ours['cpu']:.2f} s CPU (tool_call_accuracy "
          f"{ours['tool_call_accuracy']:.3f}); import jsonschema before it: {ours['import_seconds']:.2f} s")
    print(f"chrF on the same rows: {chrf['seconds']:.2f} s wall, {chrf['cpu']:.2f} s CPU; tool scoring / chrF = "
          f"{ours['seconds'] / chrf['seconds']:.2f}x wall, {ours['cpu'] / chrf['cpu']:.2f}x CPU")
    if "bfcl" in results:
        bfcl = results["bfcl"]
        print(f"BFCL's ast_checker alone, same rows: {bfcl['seconds']:.2f} s wall, {bfcl['cpu']:.2f} s CPU (accuracy "
              f"{bfcl['accuracy']:.3f}); ours (7 metrics + frames) / BFCL (1 verdict) = "
              f"{ours['cpu'] / bfcl['cpu']:.2f}x CPU")
        if abs(bfcl["accuracy"] - ours["tool_call_accuracy"]) > 1e-12:
            sys.exit("the two accuracies differ: the verdicts disagree")
    print(f"goal <= 10 s: {'met' if ours['seconds'] <= 10 else 'NOT met'}")


if __name__ == "__main__":
    main()
