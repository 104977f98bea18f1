"""Synthetic production logs built from the bundled support data, with drift injected on purpose.

Used by the tests (drift that must be found, random splits that must not be flagged), the
benchmark (100k rows) and the bundled demo log. Messages are the bundled items' real inputs with
everyday variation (greetings, sign-offs, order numbers); each kind of drift replaces a share of
the rows from some point in time on:

- "language": the same support questions in French, German, Spanish and Portuguese;
- "product":  questions about a product line the reference never saw (AeroKite drones);
- "length":   inputs twice as long (two messages of the same language in one);
- "refusal":  responses that decline to help (a quality drift, inputs unchanged);
- "wrong_language": Japanese inputs answered in English (a quality drift).
"""
from __future__ import annotations

import gzip
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np
import pandas as pd

from workbench.project.lookup import bundled

KINDS = ("language", "product", "length", "refusal", "wrong_language")

_GREET = {"en": ["", "", "Hi, ", "Hello, ", "Hey team, ", "Good morning. ", "Hi there! "],
          "ja": ["", "", "こんにちは。", "お世話になっております。", "すみません、"]}
_SIGN = {"en": ["", "", " Thanks!", " Thank you.", " Order #{n}.", " My order number is {n}.", " Regards."],
         "ja": ["", "", "よろしくお願いします。", "ありがとうございます。", "注文番号は{n}です。"]}
_FOREIGN = [
    ("fr", "Bonjour, mon casque Soniq Air Pro ne se connecte plus à mon téléphone. Que dois-je faire ?"),
    ("fr", "La batterie de mon ordinateur Kestrel 14 se vide en deux heures. Est-ce normal ?"),
    ("fr", "Ma cafetière BrewMate fuit par le bas depuis hier. Puis-je la faire réparer ?"),
    ("fr", "Comment réinitialiser la caméra Hearth avant de la donner à ma sœur ?"),
    ("fr", "J'ai reçu un colis abîmé et l'écouteur gauche ne marche pas. Je voudrais un remboursement."),
    ("de", "Hallo, mein Soniq Studio 2 lädt nicht mehr. Was kann ich tun?"),
    ("de", "Der Lüfter meines Kestrel 16 ist sehr laut, auch ohne Last. Ist das ein Defekt?"),
    ("de", "Wie entkalke ich die BrewMate Kaffeemaschine richtig?"),
    ("de", "Die Hearth Steckdose verliert ständig die WLAN-Verbindung. Bitte um Hilfe."),
    ("es", "Hola, mis auriculares Soniq Air Pro no se conectan al móvil nuevo. ¿Qué hago?"),
    ("es", "La pantalla de mi portátil Kestrel 14 parpadea cuando lo desconecto del cargador."),
    ("es", "Mi cafetera BrewMate hace un ruido extraño al moler el café. ¿Es normal?"),
    ("es", "¿Cómo cambio la contraseña de la cámara Hearth desde la aplicación?"),
    ("pt", "Olá, meu fone Soniq Air Pro não conecta no celular novo. O que faço?"),
    ("pt", "A bateria do meu notebook Kestrel 14 acaba muito rápido. Podem ajudar?"),
    ("pt", "Minha cafeteira BrewMate está vazando água. Como peço o conserto?"),
]
_PRODUCTS = ["AeroKite X2 drone", "AeroKite Mini drone", "AeroKite X2", "AeroKite gimbal"]
_PRODUCT_EN = [
    "My {p} won't take off after the latest firmware update.",
    "The {p} keeps drifting to the left when hovering. How do I recalibrate the compass?",
    "How long should the propellers on the {p} last before I replace them?",
    "The {p} controller lost its link at 200 metres. Is that the maximum range?",
    "Can I fly the {p} in light rain, or will it damage the motors?",
    "The camera on my {p} records shaky video. Is the gimbal broken?",
    "Where can I buy spare batteries for the {p}?",
    "The {p} app says 'propeller fault' before every flight. What does that mean?",
]
_PRODUCT_JA = [
    "{p}のプロペラが回らず、離陸できません。",
    "{p}がホバリング中に左へ流れます。コンパスの校正方法を教えてください。",
    "{p}の予備バッテリーはどこで買えますか？",
    "{p}のジンバルが揺れて、動画がぶれます。故障でしょうか。",
    "{p}のコントローラーの接続が200メートルで切れます。",
]
_REFUSALS = {"en": "I'm sorry, but I can't help with that request.",
             "ja": "申し訳ありませんが、そのご依頼にはお答えできません。"}
_EN_ANSWER = "Please restart the device and try again; if the problem continues, contact our support team."


def base_items(path: str | Path | None = None) -> list[dict]:
    """The bundled support items (input, reference, language, product_line, ...)."""
    path = Path(path) if path else bundled("data/support_reviews.jsonl")
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


@dataclass(frozen=True)
class Drift:
    kind: str
    start: float = 0.5  # fraction of the log's time range where it begins
    share: float = 0.3  # share of rows it replaces from then on

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ValueError(f"unknown drift kind '{self.kind}'; known: {KINDS}")


def message(item: dict, rng: np.random.Generator, variation: bool = True) -> str:
    if not variation:
        return item["input"]
    lang = "ja" if item["language"] == "ja" else "en"
    greet = _GREET[lang][rng.integers(len(_GREET[lang]))]
    sign = _SIGN[lang][rng.integers(len(_SIGN[lang]))].format(n=rng.integers(10000, 99999))
    return f"{greet}{item['input']}{sign}"


def production_log(n_rows: int, *, seed: int = 0, start: str = "2026-10-05", days: int = 28,
                   drifts: Sequence[Drift] = (), models: Sequence[str] = ("hf/smollm2-135m-instruct",),
                   switch_at: float | None = None, items: list[dict] | None = None,
                   variation: bool = True) -> pd.DataFrame:
    """A log of `n_rows` requests spread uniformly over `days` from `start` (UTC), sorted by time:
    timestamp (ISO 8601), request_id, input, response, model, judge_score (1-5). With two models
    and `switch_at`, the second replaces the first from that fraction of the time range on.
    `variation=False` sends the items' inputs exactly as written (no greetings, order numbers)."""
    rng = np.random.default_rng(seed)
    items = items or base_items()
    t0 = pd.Timestamp(start, tz="UTC")
    offsets = np.sort(rng.uniform(0, days * 86400, size=n_rows))
    frac = offsets / (days * 86400)
    picks = rng.integers(len(items), size=n_rows)
    rows = []
    for i in range(n_rows):
        item = items[picks[i]]
        lang = "ja" if item["language"] == "ja" else "en"
        text, answer = message(item, rng, variation), item["reference"]
        judge = float(np.clip(rng.normal(4.2, 0.5), 1, 5))
        for d in drifts:
            if frac[i] < d.start or rng.random() >= d.share:
                continue
            if d.kind == "language":
                _, text = _FOREIGN[rng.integers(len(_FOREIGN))]
            elif d.kind == "product":
                p = _PRODUCTS[rng.integers(len(_PRODUCTS))]
                if lang == "ja":
                    text = _PRODUCT_JA[rng.integers(len(_PRODUCT_JA))].format(p=p)
                else:
                    text = _PRODUCT_EN[rng.integers(len(_PRODUCT_EN))].format(p=p)
            elif d.kind == "length":
                same = [it for it in items if it["language"] == item["language"]]
                other = same[rng.integers(len(same))]
                text = f"{text} {'Also, ' if lang == 'en' else 'あと、'}{message(other, rng, variation)}"
            elif d.kind == "refusal":
                answer, judge = _REFUSALS[lang], float(np.clip(rng.normal(1.5, 0.5), 1, 5))
            elif d.kind == "wrong_language" and lang == "ja":
                answer, judge = _EN_ANSWER, float(np.clip(rng.normal(2.5, 0.5), 1, 5))
        model = models[0] if (switch_at is None or len(models) < 2 or frac[i] < switch_at) else models[1]
        ts = t0 + pd.Timedelta(seconds=float(offsets[i]))
        rows.append({"timestamp": ts.strftime("%Y-%m-%dT%H:%M:%SZ"), "request_id": f"req-{seed}-{i + 1:06d}",
                     "input": text, "response": answer, "model": model, "judge_score": round(judge, 2)})
    return pd.DataFrame(rows)


def reference_dataset(n_items: int, *, seed: int = 0, items: list[dict] | None = None) -> pd.DataFrame:
    """A reference dataset (item_id, input, reference, language) of `n_items` messages drawn like
    the log's, without drift."""
    log = production_log(n_items, seed=seed + 10_000, items=items)
    return pd.DataFrame({"item_id": [f"ref-{i + 1:05d}" for i in range(n_items)], "input": log["input"],
                         "reference": log["response"]})


def write_jsonl(frame: pd.DataFrame, path: str | Path) -> Path:
    path = Path(path)
    text = "".join(json.dumps(r, ensure_ascii=False, default=str) + "\n" for r in frame.to_dict(orient="records"))
    if path.suffix == ".gz":
        with gzip.GzipFile(path, "wb", mtime=0) as handle:  # mtime 0: the same rows give the same bytes
            handle.write(text.encode("utf-8"))
    else:
        path.write_text(text, encoding="utf-8")
    return path


def demo_log() -> pd.DataFrame:
    """The bundled demo log (workbench/resources/data/drift_demo_production.jsonl.gz): six weeks of a
    support assistant's traffic on the bundled support items (the migration demo's dataset, so the
    drift report's default reference), with a model switch in week 3, a new product line from week
    5, French and other languages in week 6 and a burst of refusals in its last days."""
    return production_log(1200, seed=7, start="2026-10-05", days=42, variation=False,
                          drifts=[Drift("product", 4 / 6, 0.3), Drift("language", 5 / 6, 0.25),
                                  Drift("refusal", 5.5 / 6, 0.35)],
                          models=["litellm/openai/gpt-4o-2024-05-13", "hf/smollm2-135m-instruct"], switch_at=2.5 / 6)
