"""No false alarm on random splits of the same data: the whole pipeline (four tests per window,
Benjamini-Hochberg across windows and tests, minimum effects) flags a run that has no drift in at
most 5% of 100 random splits, measured here.

The embedding test runs on character n-gram hashing vectors instead of all-MiniLM-L6-v2: its
p-value comes from permutations, so its level does not depend on which embedding it reads, and
100 runs stay fast on two cores. test_embedding.py runs the real model."""
import numpy as np
import pandas as pd
import pytest

from tests.monitor._data import config
from workbench.monitor import synthetic as syn
from workbench.monitor.run import run_drift

SPLITS = 100


def hashing_embedder():
    from sklearn.feature_extraction.text import HashingVectorizer

    vectorizer = HashingVectorizer(analyzer="char_wb", ngram_range=(2, 4), n_features=512, alternate_sign=False, norm="l2")
    cache: dict[str, np.ndarray] = {}

    def embed(texts):
        missing = [t for t in dict.fromkeys(texts) if t not in cache]
        if missing:
            cache.update(zip(missing, vectorizer.transform(missing).toarray()))
        return np.stack([cache[t] for t in texts])

    return embed


@pytest.mark.slow
def test_false_alarm_rate_over_100_random_splits_is_at_most_5_percent(tmp_path):
    pool = syn.production_log(900, seed=11, days=4)
    embed = hashing_embedder()
    reference_path, log_path = tmp_path / "reference.jsonl", tmp_path / "production.jsonl"
    alarms, smallest_q = [], []
    for split in range(SPLITS):
        order = np.random.default_rng(1000 + split).permutation(len(pool))
        reference = pool.iloc[order[:300]]
        production = pool.iloc[np.sort(order[300:])].copy()  # time order kept, rows drawn at random
        syn.write_jsonl(pd.DataFrame({"item_id": [f"r{k}" for k in range(300)], "input": reference["input"].to_numpy()}),
                        reference_path)
        syn.write_jsonl(production, log_path)
        result = run_drift(config(tmp_path, reference_path, log_path, signals=["length", "language", "vocabulary", "embedding"],
                                  permutations=200, embedding_sample=80, embedding_reference_sample=200, seed=split),
                           embed=embed)
        assert len(result.tests) == 4 * 4  # four daily windows, four tests each: the run did test
        alarms.append(result.exit_code != 0)
        smallest_q.append(result.tests["q_value"].min())
    rate = float(np.mean(alarms))
    print(f"false alarms: {sum(alarms)}/{SPLITS}; smallest adjusted p per run, 5% quantile {np.quantile(smallest_q, 0.05):.3f}")
    assert rate <= 0.05
