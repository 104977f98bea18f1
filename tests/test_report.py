"""`workbench report` end to end: papermill, HTML, verdict and manifest, exit codes, bad input, secrets."""
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from tests.fault_server import Fault, FaultServer
from workbench.task.config import MigrationConfig
from workbench.report.command import DEFAULT_NOTEBOOK, bundled_notebook, notebook_parameters

REPO = Path(__file__).resolve().parents[1]
FAKE_KEY = "sk-test-REPORT-LEAK-CHECK-9f8e7d6c5b4a"
XSS = "<script>window.__xss=1</script><img src=x onerror=alert(1)>"


def _dataset(tmp_path: Path, n: int = 12) -> Path:
    rows = []
    for k in range(n):
        lang, task = ("en", "ja")[k % 2], ("support_reply", "review_summary")[(k // 2) % 2]
        text = f"customer message {k}" + (f" {XSS}" if k == 0 else "")
        rows.append({"item_id": f"it{k:02d}", "input": text, "reference": f"customer reply {k}", "language": lang,
                     "task": task, "product_line": "laptop", "difficulty": "easy"})
    path = tmp_path / "items.jsonl"
    path.write_text("\n".join(json.dumps(r) for r in rows) + "\n", encoding="utf-8")
    return path


def _report(tmp_path: Path, params: dict, env: dict | None = None) -> subprocess.CompletedProcess:
    params_file = tmp_path / "params.json"
    params_file.write_text(json.dumps(params), encoding="utf-8")
    return subprocess.run([sys.executable, "-m", "workbench.cli", "report", "--params", str(params_file),
                           "--reports-dir", str(tmp_path / "reports")], capture_output=True, text=True,
                          env={**os.environ, **(env or {})}, timeout=600, cwd=tmp_path)


def _fake_params(tmp_path: Path, **extra) -> dict:
    return {"dataset": str(_dataset(tmp_path)), "baseline": "fake/base", "candidates": ["fake/cand"],
            "judge": None, "metrics": ["chrf", "rouge_l", "length_chars"], "bootstrap_resamples": 100,
            "gate": {"min_items": 30, "metrics": {"chrf": {"max_drop": 5.0, "higher_is_better": True}},
                     "max_error_rate": 0.05},
            "store": str(tmp_path / "store.db"), "report_name": "t", **extra}


def test_notebook_parameters_are_exactly_the_config_fields():
    notebook = bundled_notebook(DEFAULT_NOTEBOOK)
    assert set(notebook_parameters(notebook)) == set(MigrationConfig.model_fields)
    defaults = MigrationConfig.from_parameters(notebook_parameters(notebook))
    assert defaults == MigrationConfig()  # notebook defaults and the config's defaults are one thing


def test_report_with_fake_models_writes_all_files_and_reruns_free(tmp_path):
    proc = _report(tmp_path, _fake_params(tmp_path))
    assert proc.returncode == 2, proc.stderr[-3000:]  # 12 items < min_items: honestly INCONCLUSIVE
    assert "without encryption" not in proc.stderr  # no kernel transport warning on every report
    out = tmp_path / "reports" / "t"
    assert {p.name for p in out.iterdir()} >= {"report.ipynb", "report.html", "verdict.json", "manifest.json"}
    html = (out / "report.html").read_text(encoding="utf-8")
    assert not re.search(r"<script[^>]+src=[\"']https?://", html)  # nothing from a CDN
    assert "window.__xss=1" not in html.replace("&lt;script&gt;window.__xss=1", "")  # model output escaped
    assert "&lt;script&gt;window.__xss=1" in html
    assert "Verdict: INCONCLUSIVE" in html and 'id="Worst-regressions,-side-by-side"' in html
    assert "import json" not in html  # inputs hidden
    verdict = json.loads((out / "verdict.json").read_text())
    manifest = json.loads((out / "manifest.json").read_text())
    assert verdict["verdict"] == "INCONCLUSIVE" and verdict["complete"] is True
    assert manifest["calls"]["made"] == 24 and manifest["dataset"]["items"] == 12
    assert "git" in manifest and manifest["workbench_version"] and "packages" in manifest["environment"]
    again = _report(tmp_path, _fake_params(tmp_path))
    assert again.returncode == 2
    verdict2 = json.loads((out / "verdict.json").read_text())
    assert json.loads((out / "manifest.json").read_text())["calls"]["made"] == 0
    assert verdict2 == verdict  # same numbers from a warm store


@pytest.mark.parametrize("override, expected", [
    ({"sample_size": "ten"}, "parameter 'sample_size'"),
    ({"no_such_parameter": 1}, "unknown parameter(s): no_such_parameter"),
    ({"dataset": "data/missing.jsonl"}, "parameter 'dataset': data/missing.jsonl not found"),
    ({"metrics": ["no_such_metric"]}, "no_such_metric"),
    ({"candidates": ["nope/model"]}, "unknown model provider 'nope'"),
])
def test_bad_parameters_exit_3_with_a_clear_message(tmp_path, override, expected):
    proc = _report(tmp_path, {**_fake_params(tmp_path), **override})
    assert proc.returncode == 3
    assert expected in proc.stderr
    assert "Traceback" not in proc.stderr


def test_failing_cell_is_named_and_a_report_still_comes_out(tmp_path):
    import nbformat

    broken = nbformat.read(bundled_notebook(DEFAULT_NOTEBOOK), as_version=4)
    broken.cells.insert(5, nbformat.v4.new_code_cell('raise ValueError("a cell of the project\'s own failed")'))
    nbformat.write(broken, tmp_path / "own.ipynb")
    params_file = tmp_path / "params.json"
    params_file.write_text(json.dumps(_fake_params(tmp_path)), encoding="utf-8")
    proc = subprocess.run([sys.executable, "-m", "workbench.cli", "report", "--params", str(params_file),
                           "--notebook", str(tmp_path / "own.ipynb"), "--reports-dir", str(tmp_path / "reports")],
                          capture_output=True, text=True, timeout=600, cwd=tmp_path)
    assert proc.returncode == 3
    verdict = json.loads((tmp_path / "reports" / "t" / "verdict.json").read_text())
    assert verdict["verdict"] == "ERROR" and verdict["failed_cell"] == 6  # the executed notebook's index
    assert "a cell of the project's own failed" in verdict["error"]
    assert (tmp_path / "reports" / "t" / "report.html").is_file()  # the errors are shown, not hidden
    assert not (tmp_path / "reports" / "t" / "manifest.json").exists()  # no record of an incomplete report


def test_a_broken_lifecycle_file_is_named_in_an_error_verdict(tmp_path):
    # the lifecycle file exists, so it passes preflight; its content fails when the pipeline reads it
    (tmp_path / "life.toml").write_text("[models\nbroken", encoding="utf-8")
    proc = _report(tmp_path, _fake_params(tmp_path, lifecycle_file=str(tmp_path / "life.toml")))
    assert proc.returncode == 3, proc.stderr
    assert "life.toml" in proc.stderr and "Traceback" not in proc.stderr, proc.stderr
    assert not (tmp_path / "reports").exists()  # found before the report folder is made: nothing written there


def test_api_key_never_reaches_any_written_file(tmp_path):
    params = _fake_params(tmp_path, candidates=["litellm/openai/gpt-4o-mini"], candidate_prompts=[None],
                          timeout_s=10.0)
    with FaultServer() as server:
        for k in range(12):  # every item's call fails authentication, and the server echoes the key back
            text = f"customer message {k}" + (f" {XSS}" if k == 0 else "")
            server.always(text, Fault("status", status=401, echo_auth=True), times=10)
        params["api_base"] = server.url
        proc = _report(tmp_path, params, env={"OPENAI_API_KEY": FAKE_KEY})
        assert server.total_hits() == 12  # auth errors are not retried
    assert proc.returncode == 3, proc.stderr[-2000:]  # no evidence for the candidate: could not run, not FAIL
    assert "none of its 12 calls was answered" in proc.stderr and "auth" in proc.stderr
    out = tmp_path / "reports" / "t"
    verdict = json.loads((out / "verdict.json").read_text())
    assert verdict["verdict"] == "ERROR" and "auth" in verdict["error"]
    written = [p for p in tmp_path.rglob("*") if p.is_file()]
    assert any(p.suffix == ".db" for p in written)
    for path in written:
        assert FAKE_KEY.encode() not in path.read_bytes(), f"key leaked into {path}"
    assert FAKE_KEY not in proc.stdout + proc.stderr


def test_documented_example_parameters_are_valid():
    from workbench.task.config import build_config

    config = build_config(REPO / "docs" / "migration.example.toml")
    assert config.gate_config().min_items == 100
    from workbench.generation.options import check

    check(config.model_options, config.models())
    assert len(config.model_options["litellm/openai/gpt-4.1-mini"]["deployments"]) == 2


def test_every_plotted_win_rate_is_drawn_where_the_table_says(tmp_path):
    """The report's figures, read from the executed notebook's plotly JSON: each win-rate dot and
    its interval sit at the numbers in verdict.json (grouped traces once shifted them)."""
    from tests.judge_server import JudgeServer
    from workbench.report.plots import drawn_points

    params = _fake_params(tmp_path)
    rows = [json.loads(line) for line in _dataset(tmp_path, 40).read_text().splitlines()]
    replay = {}
    for name, good in (("base", lambda k: k % 4 == 0), ("cand", lambda k: k % 4 != 0)):
        path = tmp_path / f"{name}.jsonl"
        path.write_text("".join(json.dumps({"item_id": r["item_id"], "response": f"reply {k}" + (" GOOD" if good(k) else "")})
                                + "\n" for k, r in enumerate(rows)), encoding="utf-8")
        replay[name] = f"replay/{path}"
    with JudgeServer() as server:
        params.update(baseline=replay["base"], candidates=[replay["cand"]], baseline_prompt=None,
                      candidate_prompts=[None], judge="openai/judge", judge_template="chat-v1", api_base=server.url,
                      sample_size=None, gate={"min_items": 30, "win_rate": {"noninferiority_margin": 0.1},
                                              "min_position_consistency": 0.8})
        proc = _report(tmp_path, params)
    assert proc.returncode == 0, proc.stderr[-3000:]
    out = tmp_path / "reports" / "t"
    verdict = json.loads((out / "verdict.json").read_text())
    table = {w["source"]: w for w in verdict["candidates"][replay["cand"]]["win_rates"]}
    nb = json.loads((out / "report.ipynb").read_text())
    figures = [o["data"]["application/vnd.plotly.v1+json"] for c in nb["cells"] for o in c.get("outputs", [])
               if "application/vnd.plotly.v1+json" in o.get("data", {})]
    win_plots = [f for f in figures if "Win rate" in json.dumps(f.get("layout", {}).get("title", ""))]
    assert win_plots, "the report draws the win rates"
    drawn = drawn_points(win_plots[0])
    assert len(drawn) == len([w for w in table.values() if w["win_rate"] is not None])
    for point in drawn.itertuples():
        row = table[point.trace]
        assert point.value == pytest.approx(row["win_rate"]) and point.ci_low == pytest.approx(row["ci_low"])
        assert point.ci_high == pytest.approx(row["ci_high"])
    consistency = [f for f in figures if "consisten" in json.dumps(f.get("layout", {})).lower()]
    assert consistency and "gate minimum" in json.dumps(consistency[0]["layout"])


def test_a_report_renders_each_request_once_and_its_kernel_recomputes_nothing(tmp_path, monkeypatch):
    """Config checked once, items loaded once, every (model, prompt, item) rendered once in the whole
    report: the requests rendered before the store is opened are the ones generation sends, and the
    notebook's kernel shows the result `workbench report` computed instead of running the pipeline."""
    import nbformat

    from workbench import pipeline
    from workbench.generation import runner
    from workbench.report.command import run_report
    from workbench.task.config import build_config

    rendered: dict[str | None, int] = {}
    render, load = runner.render_items, pipeline.load_items
    loads, checks = [], []

    def counting_render(items, prompt):
        items = list(items)
        rendered[prompt.ref if prompt else None] = rendered.get(prompt.ref if prompt else None, 0) + len(items)
        return render(items, prompt)

    def counting_load(*args, **kwargs):
        loads.append(args)
        return load(*args, **kwargs)

    monkeypatch.setattr(runner, "render_items", counting_render)
    monkeypatch.setattr(pipeline, "load_items", counting_load)  # the path reads the dataset through its own name
    config = build_config(None, {"baseline": "fake/base", "candidates": ["fake/cand"], "judge": None,
                                 "metrics": ["chrf"], "bootstrap_resamples": 100, "report_name": "t",
                                 "gate": {"min_items": 30, "metrics": {"chrf": {"max_drop": 100.0,
                                                                                "higher_is_better": True}}},
                                 "store": str(tmp_path / "store.db")}, base=tmp_path)
    preflight = type(config).preflight
    monkeypatch.setattr(type(config), "preflight", lambda self, **kw: (checks.append(kw), preflight(self, **kw))[1])
    code, out = run_report(config, reports_dir=tmp_path / "reports")
    assert code == 0
    # the demo's size and prompts: 96 sampled items, each rendered once with each arm's prompt
    assert rendered == {"support_fewshot@v1": 96, "support_chat@v1": 96}
    assert len(loads) == 1 and checks == [{"requirements": True}]
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["calls"]["generation_made"] == 2 * 96
    executed = nbformat.read(out / "report.ipynb", as_version=4)
    cell = next(c for c in executed.cells if "notebook_result(globals())" in c.source)
    summary = "".join(o.get("text", "") for o in cell.outputs)
    # the kernel showed this process's result: its seconds to one decimal, which the manifest's value (rounded
    # to two) gives up to its own rounding (0.95 in the manifest may have been shown as 0.9 or 1.0)
    seconds = manifest["pipeline_wall_s"]
    assert any(f"{seconds + half:.1f} s" in summary for half in (-0.005, 0.0, 0.005)), (seconds, summary)


BEFORE_ISSUE_19 = Path(__file__).parent / "data" / "demo_fake_verdict_before_issue19.json"
DEMO_SHAPED = {"baseline": "fake/base", "candidates": ["fake/cand"], "judge": None,
               "metrics": ["chrf", "rouge_l", "bleu", "length_chars"], "report_name": "demo-fake",
               "gate": {"min_items": 30, "metrics": {"chrf": {"max_drop": 5.0, "higher_is_better": True}}},
               "store": "store.db"}


def _computed_numbers(verdict: dict) -> dict:
    """verdict.json without what is measured rather than computed: the lifecycle's days left (as of
    today) and latency ratios (the fake models' timings)."""
    numbers = {k: v for k, v in verdict.items() if k != "lifecycle"}
    numbers["candidates"] = {name: {**c, "ratios": [r for r in c["ratios"] if "latency" not in r["measure"]]}
                             for name, c in verdict["candidates"].items()}
    return numbers


def test_the_demo_shaped_reports_numbers_are_what_the_code_before_gave(tmp_path):
    """The one path (issue 19) moved where the numbers are computed (once, in `workbench report`), not
    what they are: the demo's data, sample (96 of 128, stratified), prompts, metrics and bootstrap with
    deterministic fake models give, to the last digit, every number of verdict.json (each metric delta
    with its CI and p-values, the McNemar checks, the gate's rules and reasons) that the code before it
    gave (recorded from fca9f46 = a7504d2 with the bundled prompts found)."""
    proc = _report(tmp_path, DEMO_SHAPED)
    assert proc.returncode == 0, proc.stderr[-3000:]
    now = json.loads((tmp_path / "reports" / "demo-fake" / "verdict.json").read_text(encoding="utf-8"))
    before = json.loads(BEFORE_ISSUE_19.read_text(encoding="utf-8"))
    assert now["candidates"]["fake/cand"]["n_paired"] == 96 and now["candidates"]["fake/cand"]["metric_deltas"]
    assert _computed_numbers(now) == _computed_numbers(before)
