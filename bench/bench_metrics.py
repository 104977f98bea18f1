"""Benchmark: sentence BLEU, chrF and ROUGE-L over 10k mixed en/ja response pairs.

    .venv/bin/python bench/bench_metrics.py            # timings (target: all three <= 60 s)
    .venv/bin/python bench/bench_metrics.py --semantic # also: MiniLM on en vs ja (quality + time)

The pairs are synthetic but shaped like support replies: 3-6 sentence references built from
slot-filled facts, candidates that reword, drop, add or (rarely) replace sentences, a few
empty answers; 60% English, 40% Japanese. Generation is deterministic (seeded).

Each measurement runs in its own subprocess so no tokenizer cache (sacrebleu and MeCab cache
per process) carries over. "ours" is `score_responses` (validation, language routing, one
metric per call); the baseline is the bare library loop with the same settings in the same
run, so the ratio is the wrapper's overhead.
"""
from __future__ import annotations

import argparse
import json
import random
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

# Facts: each a list of alternative wordings (the first is the reference's).
EN_FACTS = [
    ["Thank you for contacting {brand} support about order {order}.",
     "Thanks for reaching out to {brand} about your order {order}.",
     "We appreciate you getting in touch regarding order {order}."],
    ["We are sorry that your {product} arrived damaged.",
     "We apologise that the {product} you received was damaged.",
     "Sorry to hear the {product} was broken on arrival."],
    ["A full refund of {amount} has been issued to your original payment method.",
     "We have refunded {amount} to the card you paid with.",
     "Your {amount} refund is on its way to your original payment method."],
    ["It should appear within {days} business days.",
     "Please allow up to {days} business days for it to show up.",
     "You will see it in about {days} working days."],
    ["If you prefer a replacement, reply to this email and we will ship a new {product} free of charge.",
     "Would you rather have a replacement? Just reply and we'll send another {product} at no cost.",
     "We can also send a replacement {product} for free if you reply to this message."],
    ["To reset your password, open Settings and choose Forgot password.",
     "You can reset the password from Settings by selecting Forgot password.",
     "Go to Settings, then Forgot password, to set a new password."],
    ["Your {product} is covered by our {years}-year warranty.",
     "The warranty on your {product} lasts {years} years.",
     "Because the {product} is under a {years} year warranty, repairs are free."],
    ["The tracking number is {order}, and the parcel is expected on {weekday}.",
     "You can track the parcel with {order}; it should arrive on {weekday}.",
     "Delivery is planned for {weekday} (tracking: {order})."],
    ["Please let us know if there is anything else we can help with.",
     "Let us know if you need anything else.",
     "Feel free to contact us again with any other questions."],
    ["Our store in {city} is open from 10am to 8pm every day.",
     "The {city} shop opens daily between 10am and 8pm.",
     "You can visit our {city} location any day from 10 to 8."],
]
JA_FACTS = [
    ["{brand}サポートへのお問い合わせ、注文番号{order}の件でございますね。",
     "注文番号{order}について{brand}にご連絡いただきありがとうございます。",
     "ご注文{order}の件、お問い合わせありがとうございます。"],
    ["お届けした{product}が破損していたとのこと、大変申し訳ございません。",
     "{product}が壊れた状態で届いてしまい、申し訳ありません。",
     "破損した{product}をお届けしてしまい、お詫び申し上げます。"],
    ["{amount}の全額をお支払い方法に返金いたしました。",
     "ご利用のお支払い方法へ{amount}を返金しました。",
     "{amount}の返金手続きを完了いたしました。"],
    ["{days}営業日以内に反映される予定です。",
     "反映まで{days}営業日ほどお待ちください。",
     "{days}営業日程度で確認いただけます。"],
    ["交換をご希望の場合は、このメールにご返信いただければ新しい{product}を無料でお送りします。",
     "交換がよろしければご返信ください。新しい{product}を無償で発送いたします。",
     "ご返信いただければ、代わりの{product}を無料でお届けすることも可能です。"],
    ["パスワードを再設定するには、設定画面から「パスワードを忘れた」を選んでください。",
     "設定画面で「パスワードを忘れた」を選ぶと、パスワードを再設定できます。",
     "パスワードの再設定は、設定の「パスワードを忘れた」から行えます。"],
    ["お使いの{product}は{years}年間の保証の対象です。",
     "{product}の保証期間は{years}年間です。",
     "{product}は{years}年保証付きのため、修理は無料です。"],
    ["追跡番号は{order}で、{weekday}にお届けの予定です。",
     "追跡番号{order}でご確認いただけます。お届けは{weekday}の予定です。",
     "{weekday}に配達予定です（追跡番号：{order}）。"],
    ["ほかにご不明な点がございましたら、お気軽にお問い合わせください。",
     "他にもお困りのことがあればお知らせください。",
     "何かございましたら、いつでもご連絡ください。"],
    ["{city}店は毎日午前10時から午後8時まで営業しております。",
     "{city}の店舗は毎日10時から20時まで開いています。",
     "{city}店の営業時間は毎日10時〜20時です。"],
]
SLOTS = {
    "brand": ["Acme", "Nimbus", "Kite"],
    "product": ["headphones", "kettle", "backpack", "monitor", "blender"],
    "product_ja": ["ヘッドホン", "電気ケトル", "リュック", "モニター", "ミキサー"],
    "city": ["Osaka", "Tokyo", "Nagoya", "Sapporo"],
    "city_ja": ["大阪", "東京", "名古屋", "札幌"],
    "weekday": ["Monday", "Wednesday", "Friday"],
    "weekday_ja": ["月曜日", "水曜日", "金曜日"],
}


def _slots(rng: random.Random, ja: bool) -> dict[str, str]:
    pick = {k: rng.choice(v) for k, v in SLOTS.items()}
    return {
        "brand": pick["brand"], "order": f"ORD-{rng.randrange(10**6):06d}",
        "amount": f"{rng.randrange(20, 400) * 100:,}円" if ja else f"${rng.randrange(10, 400)}.{rng.randrange(100):02d}",
        "days": str(rng.choice([3, 5, 7, 10])), "years": str(rng.choice([1, 2, 3])),
        "product": pick["product_ja"] if ja else pick["product"],
        "city": pick["city_ja"] if ja else pick["city"],
        "weekday": pick["weekday_ja"] if ja else pick["weekday"],
    }


def make_pairs(n: int, seed: int = 0, ja_share: float = 0.4) -> list[dict]:
    """n items with reference and a candidate response, deterministic for a seed."""
    rng = random.Random(seed)
    rows = []
    for i in range(n):
        ja = rng.random() < ja_share
        facts = JA_FACTS if ja else EN_FACTS
        slots = _slots(rng, ja)
        chosen = rng.sample(range(len(facts)), rng.randint(3, 6))
        sep = "" if ja else " "
        reference = sep.join(facts[f][0].format(**slots) for f in chosen)
        roll = rng.random()
        if roll < 0.005:
            kind, kept, response = "empty", [], ""
        elif roll < 0.05:  # off-topic answer
            kind, kept = "off_topic", rng.sample(range(len(facts)), 3)
            other_slots = _slots(rng, ja)
            response = sep.join(facts[f][rng.randrange(3)].format(**other_slots) for f in kept)
        else:
            kind = "paraphrase"
            kept = [f for f in chosen if rng.random() > 0.15] or chosen[:1]
            if rng.random() < 0.3:
                kept.append(rng.choice([f for f in range(len(facts)) if f not in kept]))
            response = sep.join(facts[f][rng.randrange(3)].format(**slots) for f in kept)
        rows.append({"item_id": f"i{i:05d}", "language": "ja" if ja else "en", "kind": kind,
                     "reference": reference, "response": response,
                     "ref_facts": sorted(chosen), "resp_facts": sorted(kept)})
    return rows


def _frames(n: int, seed: int):
    import pandas as pd

    rows = make_pairs(n, seed)
    items = pd.DataFrame([{k: r[k] for k in ("item_id", "language", "reference")} for r in rows])
    responses = pd.DataFrame([{"item_id": r["item_id"], "model": "cand", "response": r["response"]} for r in rows])
    return rows, items, responses


def _measure_ours(metric: str, n: int, seed: int) -> dict:
    from workbench.metrics import score_responses

    _, items, responses = _frames(n, seed)
    score_responses(items.head(2), responses.head(2), [metric])  # imports and tokenizer set-up
    start, cpu = time.perf_counter(), time.process_time()
    scores = score_responses(items, responses, [metric])
    return {"seconds": time.perf_counter() - start, "cpu": time.process_time() - cpu,
            "mean": float(scores["value"].mean())}


def _measure_baseline(metric: str, n: int, seed: int) -> dict:
    """The libraries alone, same settings: sacrebleu sentence scores, rouge-score's scorer."""
    import sacrebleu
    from rouge_score import rouge_scorer

    from workbench.metrics.text import JapaneseRougeTokenizer

    rows, _, _ = _frames(n, seed)
    rouge = {"en": rouge_scorer.RougeScorer(["rougeL"], use_stemmer=True),
             "ja": rouge_scorer.RougeScorer(["rougeL"], tokenizer=JapaneseRougeTokenizer())}
    bleu = {"en": sacrebleu.BLEU(effective_order=True), "ja": sacrebleu.BLEU(effective_order=True, tokenize="ja-mecab")}
    chrf = sacrebleu.CHRF()
    fns = {
        "bleu": lambda r: bleu[r["language"]].sentence_score(r["response"], [r["reference"]]).score,
        "chrf": lambda r: chrf.sentence_score(r["response"], [r["reference"]]).score,
        "rouge_l": lambda r: rouge[r["language"]].score(r["reference"], r["response"])["rougeL"].fmeasure,
    }
    fns[metric](rows[0])
    start, cpu = time.perf_counter(), time.process_time()
    values = [fns[metric](r) for r in rows]
    return {"seconds": time.perf_counter() - start, "cpu": time.process_time() - cpu,
            "mean": sum(values) / len(values)}


def _measure_semantic(n: int, seed: int) -> dict:
    """MiniLM on en vs ja: similarity of paraphrase pairs vs unrelated pairs, and speed."""
    import numpy as np

    from workbench.metrics.semantic import cosine_similarities, load_model

    t0 = time.perf_counter()
    load_model()
    load_s = time.perf_counter() - t0
    rows = [r for r in make_pairs(n, seed) if r["kind"] == "paraphrase"]
    out: dict = {"load_s": load_s}
    for lang in ("en", "ja"):
        sub = [r for r in rows if r["language"] == lang]
        refs = [r["reference"] for r in sub]
        para = [r["response"] for r in sub]
        # Unrelated: the next answer (same language) sharing no fact with this reference.
        unrelated = []
        for i, r in enumerate(sub):
            others = sub[i + 1:] + sub[:i]
            unrelated.append(next(o["response"] for o in others
                                  if not set(o["resp_facts"]) & set(r["ref_facts"])))
        start = time.perf_counter()
        s_para = np.array(cosine_similarities(para, refs))
        out[f"{lang}_encode_s"] = time.perf_counter() - start
        s_unrel = np.array(cosine_similarities(unrelated, refs))
        auc = float((s_para[:, None] > s_unrel[None, :]).mean())  # P(paraphrase pair > unrelated pair)
        out[lang] = {"n": len(sub), "paraphrase_mean": float(s_para.mean()),
                     "unrelated_mean": float(s_unrel.mean()), "unrelated_p90": float(np.quantile(s_unrel, 0.9)),
                     "auc": auc}
    return out


def _child(kind: str, metric: str, n: int, seed: int) -> dict:
    cmd = [sys.executable, __file__, "--child", kind, "--metric", metric, "-n", str(n), "--seed", str(seed)]
    done = subprocess.run(cmd, check=True, capture_output=True, text=True, cwd=ROOT)
    return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("-n", type=int, default=10_000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--semantic", action="store_true", help="also measure MiniLM on en vs ja")
    parser.add_argument("--semantic-n", type=int, default=1000)
    parser.add_argument("--child", choices=["ours", "baseline", "semantic"], help=argparse.SUPPRESS)
    parser.add_argument("--metric", default="bleu", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        import warnings

        warnings.simplefilter("ignore")
        fn = {"ours": _measure_ours, "baseline": _measure_baseline}.get(args.child)
        result = fn(args.metric, args.n, args.seed) if fn else _measure_semantic(args.n, args.seed)
        print(json.dumps(result))
        return

    rows = make_pairs(args.n, args.seed)
    n_ja = sum(r["language"] == "ja" for r in rows)
    print(f"{args.n} pairs ({n_ja} ja, {args.n - n_ja} en), seed {args.seed}")
    total = total_cpu = 0.0
    print("metric   ours wall/cpu s    library loop wall/cpu s   ratio(cpu)  mean ours (loop)")
    for metric in ("bleu", "chrf", "rouge_l"):
        ours, base = _child("ours", metric, args.n, args.seed), _child("baseline", metric, args.n, args.seed)
        total += ours["seconds"]
        total_cpu += ours["cpu"]
        print(f"{metric:8s} {ours['seconds']:7.2f} / {ours['cpu']:6.2f}    {base['seconds']:7.2f} / {base['cpu']:6.2f}"
              f"        {ours['cpu'] / base['cpu']:5.2f}     {ours['mean']:.3f} ({base['mean']:.3f})")
    verdict = "OK" if total <= 60 else "OVER (see cpu: the machine is shared)"
    print(f"total ours: wall {total:.2f} s, cpu {total_cpu:.2f} s (target <= 60 s): {verdict}")
    if args.semantic:
        sem = _child("semantic", "-", args.semantic_n, args.seed)
        print(f"semantic: model load {sem['load_s']:.2f} s")
        for lang in ("en", "ja"):
            s = sem[lang]
            print(f"  {lang}: n={s['n']} paraphrase mean {s['paraphrase_mean']:.3f}  unrelated mean "
                  f"{s['unrelated_mean']:.3f} (p90 {s['unrelated_p90']:.3f})  AUC {s['auc']:.3f}  "
                  f"encode {sem[f'{lang}_encode_s']:.2f} s")


if __name__ == "__main__":
    main()
