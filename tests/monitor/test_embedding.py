"""The embedding signal with the real all-MiniLM-L6-v2 (the bundled offline package, loaded the
way the metrics load it): a new product line moves the window's embeddings away from the
reference, and the items unlike every reference item are the new ones."""
import pytest

from tests.monitor._data import config, write_log, write_reference
from workbench.monitor import synthetic as syn
from workbench.monitor.run import run_drift


@pytest.mark.slow
def test_minilm_embeddings_flag_a_new_product_line(tmp_path):
    reference = write_reference(tmp_path, n=150)
    log = write_log(tmp_path, n=240, days=2, drifts=[syn.Drift("product", 0.5, 0.5)], seed=5)
    result = run_drift(config(tmp_path, reference, log, signals=["embedding"], embedding_sample=80,
                              embedding_reference_sample=150, permutations=199))
    tests = result.tests.set_index("window")
    assert tests.loc["2026-10-05", "p_value"] > 0.05 and not tests.loc["2026-10-05", "flagged"]
    assert tests.loc["2026-10-06", "p_value"] <= 0.01 and tests.loc["2026-10-06", "flagged"]
    novel = result.novel_items[result.novel_items["window"] == "2026-10-06"]
    assert len(novel) >= 3 and novel["input"].str.contains("AeroKite").mean() >= 0.8
    exported = result.drifted_items
    assert len(exported) and exported["drift_signals"].eq("embedding").all()
    assert exported["input"].str.contains("AeroKite").mean() >= 0.8
