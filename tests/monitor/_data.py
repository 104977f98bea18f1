"""Files for the monitor tests: a reference dataset and production logs from the synthetic
generator (the bundled support items with everyday variation), written where the test wants."""
from __future__ import annotations

from pathlib import Path
from typing import Sequence

import pandas as pd

from workbench.monitor import synthetic as syn
from workbench.monitor.config import DriftConfig

FAST = ["length", "language", "vocabulary"]  # every signal but the embedding (no model load)


def write_reference(tmp: Path, n: int = 400, seed: int = 0) -> Path:
    return syn.write_jsonl(syn.reference_dataset(n, seed=seed), tmp / "reference.jsonl")


def write_log(tmp: Path, n: int = 1200, days: int = 6, drifts: Sequence[syn.Drift] = (), seed: int = 1,
              name: str = "production.jsonl", **kwargs) -> Path:
    return syn.write_jsonl(syn.production_log(n, seed=seed, days=days, drifts=drifts, **kwargs), tmp / name)


def config(tmp: Path, reference: Path, production: Path, **overrides) -> DriftConfig:
    params = {"reference": str(reference), "production": str(production), "window": "day", "signals": FAST,
              "project_dir": str(tmp), **overrides}
    return DriftConfig.from_parameters(params)


def frame_rows(path: Path) -> pd.DataFrame:
    return pd.read_json(path, lines=True)
