"""Every flag of `generate`, `score`, `compare` and `report` through the real entry point
(`workbench.cli.main`), each checked by its effect: what the local test server received, what the
store holds, which responses a comparison selects, what the verdict record says. (Exit codes:
test_cli_exit_codes.py; `--model-options`: test_cli_model_options.py; `drift`:
monitor/test_cli_flags.py.)"""
from __future__ import annotations

import json
import sqlite3
import time
from pathlib import Path

import nbformat
import pytest

from tests.fault_server import hang
from tests.judge_server import JudgeServer
from workbench.cli import main
from workbench.pipeline import sample_items
from workbench.task.dataset import load_items
from workbench.project.lookup import bundled

N = 12
BRIEF = 'description = "One short sentence."\nmode = "chat"\nsystem = "Answer in one short sentence."\nuser = "Question: {input}"\n'


def last_json(text: str) -> dict:
    return json.loads(text.strip().splitlines()[-1])


@pytest.fixture
def server():
    """Every model here is an `openai/` model on this server; its answers are a judge's ("Compared.
    Verdict: [[C]]"), so `openai/judge` judges on it too. The tests read what it received."""
    with JudgeServer() as s:
        yield s


@pytest.fixture
def project(tmp_path: Path, monkeypatch) -> Path:
    """Items under non-default column names (`qid`, `question`), a project prompt `brief@v1` in
    `myprompts/`; the current folder is the project."""
    rows = [{"qid": f"q{k:02d}", "question": f"what is item {k}" + (" GOOD" if k % 3 else ""),
             "reference": f"item {k} is a thing", "language": "en"} for k in range(N)]
    (tmp_path / "qa.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    (tmp_path / "myprompts" / "brief").mkdir(parents=True)
    (tmp_path / "myprompts" / "brief" / "v1.toml").write_text(BRIEF, encoding="utf-8")
    monkeypatch.chdir(tmp_path)
    return tmp_path


def stored_item_ids(store: Path) -> set[str]:
    with sqlite3.connect(store) as conn:
        return {r[0] for r in conn.execute("SELECT DISTINCT item_id FROM run_items")}


# ---- generate ----------------------------------------------------------------------------------
def test_generate_fields_prompt_sampling_limit_and_concurrency(project, server, capsys):
    def args(seed: str) -> list[str]:
        return ["generate", "qa.jsonl", "--input-field", "question", "--id-field", "qid", "--model", "openai/m",
                "--api-base", server.url, "--prompt", "brief@v1", "--prompts-dir", "myprompts", "--samples", "2",
                "--temperature", "0.7", "--seed", seed, "--max-tokens", "12", "--limit", "3", "--concurrency", "1",
                "--store", "s.db", "-q"]

    assert main(args("5")) == 0
    assert last_json(capsys.readouterr().out)["calls_made"] == 6  # --limit 3 items x --samples 2
    bodies = server.bodies
    assert len(bodies) == 6 and server.max_in_flight == 1  # --concurrency 1
    assert all(b["temperature"] == 0.7 and b["max_tokens"] == 12 for b in bodies)  # --temperature, --max-tokens
    assert all(isinstance(b.get("seed"), int) for b in bodies)  # --seed reaches the API
    # --limit is the report's sample (stratified, seeded by --seed), not the first rows
    chosen = sample_items(load_items(project / "qa.jsonl", input_field="question", id_field="qid"), 3, 5)
    # --prompt from --prompts-dir, rendering --input-field
    assert all(b["messages"][0] == {"role": "system", "content": "Answer in one short sentence."} for b in bodies)
    assert sorted(b["messages"][-1]["content"] for b in bodies) == sorted(
        2 * [f"Question: {text}" for text in chosen["input"]])
    assert stored_item_ids(project / "s.db") == set(chosen["item_id"])  # --id-field
    assert main(args("5")) == 0 and last_json(capsys.readouterr().out)["cached"] == 6  # the same flags: all stored
    assert main(args("6")) == 0  # --seed is part of a sampled answer's key: all new
    assert last_json(capsys.readouterr().out)["calls_made"] == 6


def test_generate_timeout_ends_a_hanging_call(project, server, capsys):
    chosen = sample_items(load_items(project / "qa.jsonl", input_field="question", id_field="qid"), 2, 0)
    server.always(chosen["input"].iloc[0], hang())  # one of the two items --limit 2 samples
    start = time.monotonic()
    code = main(["generate", "qa.jsonl", "--input-field", "question", "--id-field", "qid", "--model", "openai/m",
                 "--api-base", server.url, "--timeout", "3", "--max-attempts", "1", "--limit", "2", "-q"])
    # the hung call ended at --timeout 3 s (10x margin), not at the API default of 60 s (or never)
    assert code == 1 and time.monotonic() - start < 30
    err = capsys.readouterr().err
    assert "1 errors" in err and "timeout: no answer from openai/m within 3 s" in err


@pytest.mark.parametrize("flags, shown", [([], True), (["--no-progress"], False), (["-q"], False)])
def test_generate_progress_lines_and_their_switches(project, server, capsys, flags, shown):
    server.latency_s = 1.2  # a phase that ends within 1 s prints no progress (issue 22): this one takes longer
    assert main(["generate", "qa.jsonl", "--input-field", "question", "--id-field", "qid", "--model", "openai/m",
                 "--api-base", server.url, *flags]) == 0
    err = capsys.readouterr().err
    assert ("generating openai/m: 12 to do" in err) is shown


def test_generate_then_compare_with_the_same_flags_just_works(project, server, capsys):
    """generate builds its runs through the config object compare reads: the same stratified sample,
    prompts (none on a project-less user's own data), sampling, concurrency (the config's 4) and store."""
    (project / "lenient.toml").write_text("min_items = 5\n[metrics.chrf]\nmax_drop = 50.0\nhigher_is_better = true\n",
                                          encoding="utf-8")
    server.latency_s = 0.2  # calls overlap: the concurrency limit is reached
    flags = ["--dataset", "qa.jsonl", "-p", "input_field", "question", "-p", "id_field", "qid", "--baseline",
             "openai/base", "--candidate", "openai/cand", "--judge", "none", "--gate", "lenient.toml",
             "-p", "api_base", server.url, "-p", "sample_size", "8", "-p", "metrics", '["chrf"]', "-q"]
    assert main(["generate", *flags]) == 0
    assert last_json(capsys.readouterr().out)["calls_made"] == 16
    assert server.max_in_flight == 4  # the config's concurrency, not a default of generate's own
    assert main(["compare", *flags]) == 0, capsys.readouterr().err
    assert last_json(capsys.readouterr().out) == {"verdict": "PASS", "n_paired": {"openai/cand": 8}}
    # generate's own flags name the same runs: every answer is already stored
    assert main(["generate", "qa.jsonl", "--input-field", "question", "--id-field", "qid", "--model", "openai/base",
                 "--model", "openai/cand", "--api-base", server.url, "--limit", "8", "-q"]) == 0
    assert last_json(capsys.readouterr().out)["cached"] == 16
    assert len(server.bodies) == 16


# ---- compare and score: which runs they select ------------------------------------------------------
@pytest.fixture
def generated(project, server, capsys) -> Path:
    """openai/base and openai/cand answered every item with the project prompt `brief@v1` only;
    params.toml names both without a prompt, so the flags must select the prompt."""
    assert main(["generate", "qa.jsonl", "--input-field", "question", "--id-field", "qid", "--model", "openai/base",
                 "--model", "openai/cand", "--prompt", "brief@v1", "--prompts-dir", "myprompts",
                 "--api-base", server.url, "-q"]) == 0
    (project / "small.jsonl").write_text("".join(line + "\n" for line in
                                                 (project / "qa.jsonl").read_text().splitlines()[:5]), encoding="utf-8")
    (project / "params.toml").write_text(
        f'dataset = "qa.jsonl"\ninput_field = "question"\nid_field = "qid"\nbaseline = "openai/base"\n'
        f'baseline_prompt = ""\ncandidates = ["openai/cand"]\ncandidate_prompts = [""]\njudge = ""\n'
        f'prompts_dir = "myprompts"\njudge_template = "chat-v1"\nmetrics = ["chrf"]\nbootstrap_resamples = 200\nreport_name = "t"\n'
        f'api_base = "{server.url}"\ngate_file = "lenient.toml"\n', encoding="utf-8")
    (project / "lenient.toml").write_text("min_items = 5\n[metrics.chrf]\nmax_drop = 50.0\nhigher_is_better = true\n",
                                          encoding="utf-8")
    (project / "strict.toml").write_text("min_items = 100\n[metrics.chrf]\nmax_drop = 50.0\nhigher_is_better = true\n",
                                         encoding="utf-8")
    capsys.readouterr()
    return project


PROMPTS = ["--baseline-prompt", "brief@v1", "--candidate-prompt", "brief@v1"]


def test_prompt_flags_select_the_runs(generated, capsys):
    assert main(["compare", "--params", "params.toml"]) == 3  # no answers without a prompt
    assert "not in the store" in capsys.readouterr().err
    assert main(["compare", "--params", "params.toml", "--candidate-prompt", "brief@v1"]) == 3  # baseline's missing
    capsys.readouterr()
    assert main(["compare", "--params", "params.toml", *PROMPTS]) == 0
    assert last_json(capsys.readouterr().out) == {"verdict": "PASS", "n_paired": {"openai/cand": N}}


def test_dataset_baseline_candidate_gate_and_json(generated, capsys):
    base = ["compare", "--params", "params.toml", *PROMPTS]
    assert main([*base, "--dataset", "small.jsonl", "--json", "out/small.json"]) == 0
    record = json.loads((generated / "out" / "small.json").read_text())  # --json (its folder created)
    assert record["candidates"]["openai/cand"]["n_paired"] == 5  # --dataset: 5 items
    assert main([*base, "--gate", "strict.toml"]) == 2  # --gate over gate_file: 12 items < min_items 100
    capsys.readouterr()
    assert main([*base, "--baseline", "openai/cand", "--candidate", "openai/base",
                 "--json", "swapped.json"]) == 0
    swapped = json.loads((generated / "swapped.json").read_text())
    assert swapped["baseline"] == "openai/cand" and list(swapped["candidates"]) == ["openai/base"]
    capsys.readouterr()
    assert main(["score", "--params", "params.toml", *PROMPTS, "--dataset", "small.jsonl"]) == 0
    assert last_json(capsys.readouterr().out)["scored"] == 2 * 5  # score takes the same flags


# ---- report: --judge, --judge none, --notebook, --reports-dir -------------------------------------
def test_report_judge_notebook_and_reports_dir_then_compare_without_judge(generated, server, capsys):
    """`--judge` judges inside `report` (both models answer alike, so each pair's two orders are one
    request and a tie); `--notebook` runs the given notebook, `--reports-dir` puts the report there;
    `compare --judge none` drops the judge a parameters file names."""
    notebook = nbformat.read(bundled("notebooks/migration_report.ipynb"), as_version=4)
    notebook.cells.append(nbformat.v4.new_markdown_cell("CUSTOM-NOTEBOOK-MARKER"))
    nbformat.write(notebook, generated / "custom.ipynb")
    server.reset()
    code = main(["report", "--params", "params.toml", *PROMPTS, "--judge", "openai/judge", "--notebook", "custom.ipynb",
                 "--reports-dir", "elsewhere", "-q"])
    assert code == 0, capsys.readouterr().err
    assert server.total_hits() == N  # the judge's calls only: the answers were stored
    out = generated / "elsewhere" / "t"
    assert "CUSTOM-NOTEBOOK-MARKER" in (out / "report.html").read_text(encoding="utf-8")
    assert not (generated / "reports").exists()
    (generated / "judged.toml").write_text((generated / "params.toml").read_text().replace('judge = ""', 'judge = "openai/judge"'),
                                           encoding="utf-8")
    compare = ["compare", "--params", "judged.toml", *PROMPTS]
    assert main([*compare, "--json", "with.json"]) == 0
    assert main([*compare, "--judge", "none", "--json", "without.json"]) == 0
    sources = {name: [r["source"] for r in json.loads((generated / name).read_text())["candidates"]["openai/cand"]
                      ["win_rates"]] for name in ("with.json", "without.json")}
    assert "judge" in sources["with.json"] and "judge" not in sources["without.json"]
    [judged] = [r for r in json.loads((generated / "with.json").read_text())["candidates"]["openai/cand"]["win_rates"]
                if r["source"] == "judge"]
    assert judged["win_rate"] == 0.5 and judged["n"] == N  # alike answers: all ties
