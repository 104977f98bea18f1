"""The per-signal tests and the bounded summaries they read."""
import math
import random
from collections import Counter

import numpy as np
import pytest

from workbench.monitor import signals as sig
from workbench.monitor.sketches import HeavyHitters, InputSketch, Reservoir, hist_quantiles, hist_values
from workbench.monitor.text import language, terms


def test_heavy_hitters_keep_every_frequent_key_in_bounded_memory():
    rng = random.Random(0)
    hh = HeavyHitters(k=50)
    truth = Counter()
    for i in range(20000):
        key = "frequent" if i % 10 == 0 else ("common" if i % 25 == 0 else f"rare{rng.randrange(100000)}")
        truth[key] += 1
        hh.add([key])
        assert len(hh.counts) <= 2 * hh.k + 1
    assert truth["frequent"] - hh.undercount <= hh["frequent"] <= truth["frequent"]
    assert hh["common"] > 0 and hh.undercount <= 20000 / 50


def test_reservoir_is_uniform_and_bounded():
    hits = Counter()
    for seed in range(400):
        r = Reservoir(10, seed)
        for i in range(100):
            r.add(i)
        assert len(r.items) == 10
        hits.update(i // 25 for i in r.items)  # four quarters of the stream
    assert max(hits.values()) / min(hits.values()) < 1.25


def test_histogram_helpers():
    counts = Counter({10: 3, 20: 1, 40: 1})
    assert sorted(hist_values(counts).tolist()) == [10, 10, 10, 20, 40]
    assert hist_quantiles(counts, [0.1, 0.5, 0.9]) == [10.0, 10.0, 40.0]


def test_language_and_terms():
    assert language("Hi, how do I pair my Soniq Air Pro with a new phone?") == "en"
    assert language("Soniq Air Proを新しいスマホに接続したいのですが、どうすればいいですか？") == "ja"
    assert language("Bonjour, mon casque ne se connecte plus à mon téléphone.") == "fr"
    assert language("?!") == "und"
    assert [t[0] for t in terms("My AeroKite X2 drone's order #12345 won't fly")] == ["my", "aerokite", "x2", "drone", "order", "won't", "fly"]
    ja = [t[1] for t in terms("AeroKite X2のプロペラが回りません。")]
    assert "プロペラ" in ja and "の" not in ja and "が" not in ja  # particles are not vocabulary


def _profile(texts):
    vocab = Counter()
    for t in texts:
        vocab.update({k for k, _, _ in terms(t)})
    langs = Counter(language(t) for t in texts)
    return sig.ReferenceProfile(len(texts), np.array([len(t) for t in texts]), langs, vocab, frozenset(langs))


def _sketch(texts, ref):
    s = InputSketch()
    for i, t in enumerate(texts):
        lang = language(t)
        s.add(i + 1, t, lang, terms(t) if lang in ref.term_languages else (), ref.vocab)
    return s


def test_new_terms_read_as_names_with_counts():
    base = ["How do I reset my Soniq headphones?", "My Kestrel laptop is slow.", "The BrewMate leaks water."] * 20
    ref = _profile(base)
    window = base[:40] + ["My AeroKite X2 won't take off."] * 12 + ["The AeroKite X2 camera shakes."] * 8
    result = sig.vocabulary_test(ref, _sketch(window, ref), min_count=5, alpha=0.05)
    shown = {t["term"]: t["items"] for t in result.details["terms"]}
    assert shown["AeroKite X2"] == 20  # the two-word name, not "aerokite" and "x2" apart
    assert "aerokite" in result.details["new_keys"]
    # Fisher, one-sided: all 20 items holding the term among 60 window + 60 reference items are in the
    # window; Bonferroni over the terms frequent enough to test
    m = result.details["tested_terms"]
    assert result.p_value == pytest.approx(m * math.comb(60, 20) / math.comb(120, 20))
    assert result.effect == pytest.approx(20 / 60)
    same = sig.vocabulary_test(ref, _sketch(base, ref), min_count=5, alpha=0.05)
    assert same.p_value == 1.0 and same.details["terms"] == []


def test_language_test_pools_rare_languages_and_sees_a_new_one():
    ref = _profile(["How do I reset it?", "Where is my order?", "リセット方法を教えてください。"] * 40)
    window = ["How do I reset it?"] * 30 + ["Comment réinitialiser mon casque ?"] * 30 + ["リセット方法を教えてください。"] * 20
    result = sig.language_test(ref, _sketch(window, ref))
    assert result.p_value < 1e-6 and result.details["risen"] == ["fr"]
    assert result.effect == pytest.approx(30 / 80, abs=1e-9)


def test_mmd_permutation_p_value_is_uniform_under_the_null_and_small_under_a_shift():
    rng = np.random.default_rng(5)
    null_p = np.array([sig.mmd_permutation_test(rng.normal(size=(40, 8)), rng.normal(size=(30, 8)), 99, s)[1]
                       for s in range(600)])
    for level in (0.05, 0.2, 0.5):  # exact level up to sampling error (sd at most 2%)
        assert abs(np.mean(null_p <= level) - level) < 0.03
    _, p, _ = sig.mmd_permutation_test(rng.normal(size=(40, 8)), rng.normal(0.8, 1, size=(30, 8)), 199, 0)
    assert p == pytest.approx(1 / 200)  # nothing permuted reaches the real split
