"""Fixtures shared by the metric tests: bilingual triples (reference, paraphrase, unrelated)."""
from __future__ import annotations

import pytest

# Paraphrases keep most content words (as a model rewording a reference does); unrelated
# sentences are on another topic in the same language and register.
JA_TRIPLES = [
    ("ご注文の商品は明日発送される予定です。",
     "ご注文いただいた商品は明日発送する予定です。",
     "東京の天気は晴れで、気温は二十度です。"),
    ("パスワードを再設定するには、設定画面から「パスワードを忘れた」を選んでください。",
     "設定画面で「パスワードを忘れた」を選ぶと、パスワードを再設定できます。",
     "このレストランのラーメンはとても美味しかったです。"),
    ("返金は五営業日以内に処理されます。",
     "返金の処理は五営業日以内に行われます。",
     "新しいスマートフォンのカメラは高画質です。"),
]
EN_TRIPLES = [
    ("Your order is scheduled to ship tomorrow.",
     "The order you placed is scheduled to ship tomorrow.",
     "The weather in Tokyo is sunny and twenty degrees."),
    ("To reset your password, choose 'Forgot password' on the settings screen.",
     "Choose 'Forgot password' on the settings screen to reset your password.",
     "The ramen at this restaurant was delicious."),
    ("Refunds are processed within five business days.",
     "Your refund is processed within five business days.",
     "The new smartphone camera takes sharp photos."),
]


@pytest.fixture(params=["en", "ja"])
def triples(request):
    return request.param, (EN_TRIPLES if request.param == "en" else JA_TRIPLES)
