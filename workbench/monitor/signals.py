"""One test per input-drift signal, each comparing one window with the reference.

Every test returns a p-value (valid under "the window comes from the reference's distribution"),
an effect size in the signal's own unit, and evidence a reader can check:

- length: two-sample Kolmogorov-Smirnov on characters per input (scipy); effect = KS D.
- language: chi-square test of the language mix (languages too rare for the approximation are
  pooled as "other"); effect = total variation distance between the two mixes.
- vocabulary: for each term absent from the reference, the hypergeometric probability that all
  of its k items fall in the window (Fisher's exact test, one-sided), Bonferroni-corrected over
  every term common enough to be tested; effect = share of window items holding the top new term.
  Only inputs in the reference's own languages (>= 2% of it) are read: in a new language every
  word is new, and the language test already reports it.
- embedding: maximum mean discrepancy (Gaussian kernel, median-distance bandwidth) between
  all-MiniLM-L6-v2 embeddings of a window sample and of the reference, with a permutation p-value;
  effect = MMD^2. The items where the MMD witness function is high (the window has more items
  there than the reference) are listed as evidence and exported.
"""
from __future__ import annotations

import math
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from workbench.monitor.sketches import InputSketch, hist_quantiles, hist_values


@dataclass
class TestResult:
    signal: str
    statistic: float
    p_value: float
    effect: float
    effect_name: str
    evidence: str
    details: dict[str, Any] = field(default_factory=dict)


@dataclass
class ReferenceProfile:
    """The reference dataset reduced to what the tests compare against."""

    rows: int
    lengths: np.ndarray
    languages: Counter
    vocab: Counter  # items holding each term
    term_languages: frozenset = frozenset()  # languages whose inputs the vocabulary test reads
    sample_texts: list[str] = field(default_factory=list)
    embeddings: np.ndarray | None = None

    @property
    def median_length(self) -> float:
        return float(np.median(self.lengths)) if len(self.lengths) else float("nan")

    @property
    def term_rows(self) -> int:
        return sum(self.languages[lang] for lang in self.term_languages)

    def language_shares(self) -> dict[str, float]:
        total = sum(self.languages.values())
        return {lang: n / total for lang, n in self.languages.most_common()} if total else {}


# ---- length ----------------------------------------------------------------------------------------

def length_test(ref: ReferenceProfile, sketch: InputSketch) -> TestResult:
    from scipy.stats import ks_2samp

    window = hist_values(sketch.lengths)
    result = ks_2samp(ref.lengths, window)
    ref_q = np.percentile(ref.lengths, [10, 50, 90])
    win_q = hist_quantiles(sketch.lengths, [0.1, 0.5, 0.9])
    ratio = win_q[1] / ref_q[1] if ref_q[1] else float("inf")
    evidence = (f"median {win_q[1]:.0f} characters vs {ref_q[1]:.0f} in the reference (x{ratio:.2f}); "
                f"10-90% {win_q[0]:.0f}-{win_q[2]:.0f} vs {ref_q[0]:.0f}-{ref_q[2]:.0f}")
    direction = "longer" if win_q[1] >= ref_q[1] else "shorter"
    return TestResult("length", float(result.statistic), float(result.pvalue), float(result.statistic), "KS D",
                      evidence, {"median_ratio": ratio, "direction": direction,
                                 "reference_p5": float(np.percentile(ref.lengths, 5)),
                                 "reference_p95": float(np.percentile(ref.lengths, 95))})


# ---- language --------------------------------------------------------------------------------------

def language_test(ref: ReferenceProfile, sketch: InputSketch, min_expected: float = 5.0) -> TestResult:
    from scipy.stats import chi2_contingency

    n_ref, n_win = sum(ref.languages.values()), sum(sketch.languages.values())
    langs = sorted(set(ref.languages) | set(sketch.languages), key=lambda l: -(ref.languages[l] + sketch.languages[l]))
    total = n_ref + n_win
    kept, other = [], [0, 0]
    for lang in langs:
        pooled = ref.languages[lang] + sketch.languages[lang]
        if min(pooled * n_ref / total, pooled * n_win / total) >= min_expected:
            kept.append([ref.languages[lang], sketch.languages[lang]])
        else:
            other[0] += ref.languages[lang]
            other[1] += sketch.languages[lang]
    if sum(other):
        kept.append(other)
    shares_ref = {l: ref.languages[l] / n_ref for l in langs}
    shares_win = {l: sketch.languages[l] / n_win for l in langs}
    tv = 0.5 * sum(abs(shares_win[l] - shares_ref[l]) for l in langs)
    if len(kept) < 2 or min(sum(r[0] for r in kept), sum(r[1] for r in kept)) == 0:
        stat, p = 0.0, 1.0
    else:
        table = np.array(kept).T
        stat, p, _, _ = chi2_contingency(table)
    changes = sorted(langs, key=lambda l: -abs(shares_win[l] - shares_ref[l]))[:4]
    evidence = "; ".join(f"{l} {shares_win[l]:.0%} (reference {shares_ref[l]:.0%})" for l in changes)
    risen = [l for l in langs if shares_win[l] - shares_ref[l] >= 0.02 and shares_win[l] >= 2 * shares_ref[l]]
    return TestResult("language", float(stat), float(p), float(tv), "total variation", evidence,
                      {"risen": risen, "shares": shares_win})


# ---- vocabulary ------------------------------------------------------------------------------------

def _all_in_window_p(k: int, n_win: int, n_ref: int) -> float:
    """P(all k items holding a term are window items | k items hold it): hypergeometric, one-sided."""
    if k > n_win:
        return 0.0
    log_p = sum(math.log((n_win - i) / (n_win + n_ref - i)) for i in range(k))
    return math.exp(log_p)


def vocabulary_test(ref: ReferenceProfile, sketch: InputSketch, min_count: int, alpha: float,
                    show: int = 12) -> TestResult:
    n_win, n_ref = sketch.term_rows, ref.term_rows
    testable = {key for key, c in sketch.terms.items() if c + ref.vocab.get(key, 0) >= min_count}
    testable |= {key for key, c in ref.vocab.items() if c >= min_count}
    m = max(len(testable), 1)
    new = [(key, c) for key, c in sketch.terms.items() if c >= min_count and key not in ref.vocab]
    scored = sorted(((key, c, min(1.0, m * _all_in_window_p(c, n_win, n_ref))) for key, c in new),
                    key=lambda t: (t[2], -t[1], t[0]))
    p = scored[0][2] if scored else 1.0
    significant = [t for t in scored if t[2] <= alpha]
    top = significant or scored
    effect = max((c for _, c, _ in top), default=0) / n_win if n_win else 0.0
    shown = _readable_terms(sketch, {key: (c, q) for key, c, q in top}, min_count)[:show]
    evidence = ("new terms: " + ", ".join(f"{t['term']} ({t['items']} items, {t['share']:.0%})" for t in shown)
                if shown else "no term absent from the reference is frequent here")
    return TestResult("vocabulary", float(len(significant)), float(p), float(effect), "top new term share",
                      evidence, {"terms": shown, "new_keys": [key for key, _, _ in significant], "tested_terms": m})


def _readable_terms(sketch: InputSketch, new: dict[str, tuple[int, float]], min_count: int) -> list[dict[str, Any]]:
    """New terms ranked by items; a two-word name is shown whole ("AeroKite X2") in place of a new
    word that occurs mostly (80%) inside it."""
    n = max(sketch.term_rows, 1)
    covered: set[str] = set()
    out = []
    for pair, c in sorted(sketch.bigrams.items(), key=lambda kv: -kv[1]):
        a, b = pair.split(" ", 1)
        parts = [w for w in (a, b) if w in new]
        if c < min_count or not parts or any(w in covered for w in parts):
            continue
        inside = [w for w in parts if c >= 0.8 * new[w][0]]  # words that occur mostly in this pair
        if inside:
            covered.update(inside)
            out.append({"term": sketch.surface.get(pair, pair), "key": pair, "items": int(c), "share": c / n,
                        "p_value": min(new[w][1] for w in parts)})
    for key, (c, q) in new.items():
        if key not in covered:
            out.append({"term": sketch.surface.get(key, key), "key": key, "items": int(c), "share": c / n, "p_value": q})
    return sorted(out, key=lambda t: (-t["items"], t["term"]))


# ---- embedding -------------------------------------------------------------------------------------

def gaussian_kernel(x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, float]:
    """(kernel over the pooled rows of x then y, bandwidth): exp(-|a-b|^2 / median |a-b|^2)."""
    z = np.vstack([x, y]).astype(np.float64)
    sq = np.sum(z * z, axis=1)
    d2 = np.maximum(sq[:, None] + sq[None, :] - 2 * z @ z.T, 0.0)
    off = d2[np.triu_indices(len(z), 1)]
    bandwidth = float(np.median(off[off > 0])) if np.any(off > 0) else 1.0
    return np.exp(-d2 / bandwidth).astype(np.float32), bandwidth


def mmd_permutation_test(x: np.ndarray, y: np.ndarray, permutations: int, seed: int,
                         kernel: np.ndarray | None = None) -> tuple[float, float, float]:
    """(MMD^2, permutation p-value, kernel bandwidth) for samples x and y (rows are points).

    Gaussian kernel with the median pairwise squared distance of the pooled sample as bandwidth;
    the biased MMD^2 estimate w'Kw with w = +1/n on x and -1/m on y. Each permutation reassigns
    the labels; p = (1 + #{permuted >= observed}) / (1 + permutations), exact in level.
    """
    bandwidth = float("nan")
    if kernel is None:
        kernel, bandwidth = gaussian_kernel(x, y)
    n, m = len(x), len(y)
    w = np.concatenate([np.full(n, 1.0 / n), np.full(m, -1.0 / m)]).astype(np.float32)
    observed = float(w @ kernel @ w)
    rng = np.random.default_rng(seed)
    stats = np.empty(permutations)
    batch = 100
    for start in range(0, permutations, batch):
        size = min(batch, permutations - start)
        perm = rng.permuted(np.repeat(w[:, None], size, axis=1), axis=0)
        stats[start:start + size] = np.einsum("ib,ib->b", perm, kernel @ perm)
    p = (1 + int(np.sum(stats >= observed - 1e-6 * abs(observed)))) / (1 + permutations)
    return observed, p, bandwidth


def witness(kernel: np.ndarray, n: int) -> np.ndarray:
    """The MMD witness at every pooled point (reference first, n of them): mean kernel to the
    window's points minus mean kernel to the reference's, each leaving the point itself out.
    High values mark regions the window has and the reference lacks."""
    k = kernel.astype(np.float64)
    diag = np.diag(k)
    to_ref, to_win = k[:, :n].sum(axis=1), k[:, n:].sum(axis=1)
    m = len(k) - n
    is_ref = np.arange(len(k)) < n
    mean_ref = (to_ref - np.where(is_ref, diag, 0.0)) / np.where(is_ref, n - 1, n)
    mean_win = (to_win - np.where(is_ref, 0.0, diag)) / np.where(is_ref, m, m - 1)
    return mean_win - mean_ref


def embedding_test(ref: ReferenceProfile, sample: list[tuple[int, str]], vectors: np.ndarray,
                   permutations: int, seed: int, show: int = 5, quantile: float = 0.95) -> TestResult:
    """MMD permutation test, and the sampled items that carry the shift: those whose witness value
    is above the reference items' own 95% quantile (about 5% of items pass by chance)."""
    kernel, bandwidth = gaussian_kernel(ref.embeddings, vectors)
    mmd2, p, _ = mmd_permutation_test(ref.embeddings, vectors, permutations, seed, kernel=kernel)
    n = len(ref.embeddings)
    scores = witness(kernel, n)
    threshold = float(np.quantile(scores[:n], quantile))
    nearest = (vectors @ ref.embeddings.T).max(axis=1)  # unit vectors: cosine similarity
    carriers = sorted(((row, text, float(w), float(c)) for (row, text), w, c in zip(sample, scores[n:], nearest)
                       if w > threshold), key=lambda t: -t[2])
    share = len(carriers) / len(sample)
    shown: dict[str, dict[str, Any]] = {}  # each text once (logs repeat messages), with how often it was sampled
    for row, text, w, c in carriers:
        if text in shown:
            shown[text]["sampled"] += 1
        elif len(shown) < show:
            shown[text] = {"row": row, "input": text, "witness": w, "nearest_cosine": c, "sampled": 1}
    evidence = (f"MMD² {mmd2:.4f} over {len(sample)} sampled items; {share:.0%} of them lie where the window has "
                f"more items than the reference (witness above its 95% reference quantile; 5% expected)")
    return TestResult("embedding", mmd2, p, mmd2, "MMD²", evidence,
                      {"drift_like_share": share, "bandwidth": bandwidth, "sampled": len(sample),
                       "novel": list(shown.values()),
                       "novel_rows": [r for r, _, _, _ in carriers]})
