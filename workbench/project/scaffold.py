"""`workbench init DIR`: a migration project ready for `workbench report --params params.toml` and
JupyterLab: every report parameter written out with its meaning, a gate, prompt versions to edit, a
small sample of real items and the notebooks (which find the project by its params.toml)."""
from __future__ import annotations

import json
import math
import shutil
from pathlib import Path
from typing import Any

from workbench.errors import InputError
from workbench.monitor.schedule import write_schedule
from workbench.pipeline import sample_items
from workbench.project.lookup import bundled
from workbench.project.params import toml_value
from workbench.stats import proportion_ci
from workbench.comparison.defaults import CONFIDENCE, DEFAULT_GATE
from workbench.task.config import MigrationConfig
from workbench.task.dataset import load_items

SAMPLE_ITEMS = 32
_SET_BY_COMMAND = {"project_dir", "output_dir"}
_TABLES = {"model_options"}  # written last: in TOML every key after a [table] header belongs to that table

MODEL_OPTIONS_EXAMPLE = """# Adapter options by model name, checked by the model's adapter before anything runs (an unknown
# option, a wrong type or a model that is not baseline, candidate or judge stops the command).
# Options are recorded with every run: never a key here, api_key_env names the variable holding it.
# `workbench report --model-options FILE` merges a file with this table over it, option by option.
# Examples (uncomment and rename the model; it must be one of the models above):
#
# [model_options."litellm/openai/my-model"]   # one model served by two replicas through litellm's Router
# api_key_env = "MY_SERVER_KEY"               # key of the deployments that name none
# routing_strategy = "least-busy"             # or usage-based-routing-v2 (default when rpm/tpm are set)
# allowed_fails = 2                           # failures within cooldown_s before a replica is rested
# cooldown_s = 60
# input_cost_per_token = 0.0000005            # USD, for cost figures (give both or neither)
# output_cost_per_token = 0.0000015
#
# [[model_options."litellm/openai/my-model".deployments]]
# api_base = "http://10.0.0.5:8000/v1"
# rpm = 600
#
# [[model_options."litellm/openai/my-model".deployments]]
# api_base = "http://10.0.0.6:8000/v1"
# api_key_env = "REPLICA_2_KEY"
#
# [model_options."hf/smollm2-135m-instruct"]  # a local model
# batch_size = 8
# dtype = "float32"
"""
_PROJECT_VALUES = {"dataset": "data/sample.jsonl", "gate_file": "gate.toml", "report_name": "migration",
                   "sample_size": None}
# `init --example tools`: a tool-calling support assistant. The baseline is the recorded production log of
# the model in use (its calls included); the candidate a bundled local model offered the same tools through
# support_tools@v1. The tool metrics are picked from the items' expected calls.
_TOOLS_VALUES = {**_PROJECT_VALUES, "dataset": "data/support_tools.jsonl", "report_name": "tools",
                 "baseline": "replay/data/support_tools_baseline.jsonl", "baseline_prompt": "support_tools@v1",
                 "candidate_prompts": ["support_tools@v1"], "judge": None, "metrics": ["tool_call_accuracy"],
                 "max_tokens": 128}
EXAMPLES = ("support", "tools")

TOOLS_GATE_TOML = """# Gate rules for the tool-calling example: each reads a {confidence:.0%} confidence interval of the
# comparison (PASS: all of it on the good side, FAIL: all on the bad side, INCONCLUSIVE: it straddles).

min_items = 20                  # fewer paired items behind a rule: INCONCLUSIVE

[metrics.tool_call_accuracy]    # share of items whose calls are all right (BFCL's rules), candidate - baseline
max_drop = 0.15                 # 28 pass/fail pairs: even an unchanged candidate's interval reaches about
higher_is_better = true         # +-0.12, so a tighter drop could never PASS here (more items: tighten it)

# tool_irrelevance (no call where none applies) rests on the 4 no-tool items here: too few for a rule
# (min_items); the report shows it with its interval. Add items without a tool to gate on it:
# [metrics.tool_irrelevance]
# max_drop = 0.20
# higher_is_better = true
"""

GATE_TOML = """# Gate rules: each reads a {confidence:.0%} confidence interval of the comparison.
# PASS when the whole interval is on the good side of the threshold, FAIL when it is all on the bad
# side, INCONCLUSIVE when it straddles it (more items would decide). Delete a rule to drop it.

min_items = {min_items}                  # fewer paired items behind a rule: INCONCLUSIVE
max_error_rate = {max_error_rate}            # failed calls of the candidate, after retries; with the sample's
                                # {items} items even 0 failures leave an interval up to {error_floor:.3f}: a lower
                                # bound needs more items (`workbench report` names how many)
min_position_consistency = {min_position_consistency}  # a judge below this is not evidence (its win rate is INCONCLUSIVE)

[win_rate]                      # the judge's (and humans') win rate of the candidate, ties = 1/2
noninferiority_margin = {margin}    # pass when the lower bound is above 0.5 - margin
# min_lower_bound = 0.5         # or: require this lower bound instead

[metrics.chrf]                  # paired delta candidate - baseline, in the metric's units
max_drop = {chrf_drop}
higher_is_better = true

[metrics.semantic_similarity]
max_drop = {sem_drop}
higher_is_better = true

# max_cost_ratio = 1.0          # candidate / baseline total cost (needs known prices)
# max_p95_latency_ratio = 1.5   # candidate / baseline p95 latency
"""


def params_toml(values: dict[str, Any] | None = None) -> str:
    """Every report parameter with its meaning; TOML has no null, so "" stands for none."""
    lines = ["# Migration report parameters: `workbench report --params params.toml` (or -p NAME VALUE).",
             "# Relative paths resolve against this file's folder. Keys come from the environment, never from here.",
             f"# Intervals are {CONFIDENCE:.0%} confidence intervals throughout. \"\" means none (TOML has no null).", ""]
    defaults = MigrationConfig().model_dump(mode="json")
    for name, field in MigrationConfig.model_fields.items():
        if name in _SET_BY_COMMAND or name in _TABLES:
            continue
        value = (values or _PROJECT_VALUES).get(name, defaults[name])
        lines.append(f"# {field.description}")
        if value is None:
            lines.append(f'{name} = ""  # none')
        elif value == {}:
            lines.append(f"# {name} = {{}}")
        else:
            lines.append(f"{name} = {toml_value(value)}")
        lines.append("")
    return "\n".join(lines) + "\n" + MODEL_OPTIONS_EXAMPLE


def reachable_error_rate(n_items: int) -> float:
    """The default max_error_rate, raised (to 2 decimals) where `n_items` calls without a single
    failure could not pass it: the project's first report must be able to PASS if nothing regressed."""
    floor = math.ceil(proportion_ci(0, n_items).high * 100) / 100
    return max(DEFAULT_GATE["max_error_rate"], floor)


def gate_toml(n_items: int = SAMPLE_ITEMS) -> str:
    gate = DEFAULT_GATE
    return GATE_TOML.format(confidence=CONFIDENCE, min_items=gate["min_items"],
                            max_error_rate=reachable_error_rate(n_items), items=n_items,
                            error_floor=proportion_ci(0, n_items).high,
                            min_position_consistency=gate["min_position_consistency"],
                            margin=gate["win_rate"]["noninferiority_margin"],
                            chrf_drop=gate["metrics"]["chrf"]["max_drop"],
                            sem_drop=gate["metrics"]["semantic_similarity"]["max_drop"])


def sample_lines(n: int = SAMPLE_ITEMS) -> list[str]:
    """A stratified sample (every language x task) of the bundled data, as jsonl lines."""
    source = bundled("data/support_reviews.jsonl")
    chosen = set(sample_items(load_items(source), n, seed=0)["item_id"])
    lines = source.read_text(encoding="utf-8").splitlines()
    return [line for line in lines if line.strip() and json.loads(line)["item_id"] in chosen]


def bundled_notebooks() -> list[Path]:
    """Every notebook the package ships (the report's, the explorer, the raters', label analysis,
    the optimizer's, the drift monitor's): a project gets them all."""
    return sorted(bundled("notebooks").glob("*.ipynb"))


def init_project(directory: str | Path, example: str = "support") -> Path:
    """Create the project; an existing non-empty folder is refused (nothing is overwritten). `example`:
    "support" (the text demo's sample) or "tools" (the tool-calling support assistant)."""
    if example not in EXAMPLES:
        raise InputError(f"unknown example '{example}'; choose one of {', '.join(EXAMPLES)}")
    folder = Path(directory).expanduser()
    if folder.exists() and (not folder.is_dir() or any(folder.iterdir())):
        raise InputError(f"{folder}: exists and is not an empty folder; `workbench init` overwrites nothing")
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "params.toml").write_text(params_toml(), encoding="utf-8")
    (folder / "gate.toml").write_text(gate_toml(), encoding="utf-8")
    shutil.copytree(bundled("prompts"), folder / "prompts")
    (folder / "data").mkdir()
    (folder / "data" / "sample.jsonl").write_text("\n".join(sample_lines()) + "\n", encoding="utf-8")
    (folder / "notebooks").mkdir()
    for notebook in bundled_notebooks():
        shutil.copy2(notebook, folder / "notebooks" / notebook.name)

    write_schedule(folder)  # cycle.toml and .github/workflows/workbench-cycle.yml: the loop on a schedule
    (folder / ".gitignore").write_text(".workbench/\nreports/\n", encoding="utf-8")
    if example == "tools":
        _tools_example(folder)
    return folder.resolve()


def _tools_example(folder: Path) -> None:
    """The tool-calling example over the support one: its items, the recorded baseline log, its gate."""
    (folder / "data" / "sample.jsonl").unlink()
    for name in ("support_tools.jsonl", "support_tools_baseline.jsonl"):
        shutil.copy2(bundled(f"data/{name}"), folder / "data" / name)
    (folder / "params.toml").write_text(params_toml(_TOOLS_VALUES), encoding="utf-8")
    (folder / "gate.toml").write_text(TOOLS_GATE_TOML.format(confidence=CONFIDENCE), encoding="utf-8")
