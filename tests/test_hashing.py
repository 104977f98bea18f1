"""Canonical JSON and the one conversion of numpy/pandas values to plain JSON."""
from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from workbench.hashing import canonical_json, content_hash, json_safe


def test_json_safe_turns_missing_and_non_finite_into_null_and_numpy_into_python() -> None:
    value = {1: [np.int64(3), np.float32(0.5), np.bool_(True), np.array([1.0, np.nan])],
             "x": (float("inf"), -math.inf, float("nan"), pd.NA, pd.NaT, None, "text")}
    assert json_safe(value) == {"1": [3, 0.5, True, [1.0, None]], "x": [None, None, None, None, None, None, "text"]}
    assert canonical_json(json_safe(value))  # now representable


def test_canonical_json_refuses_nan_and_ignores_key_order() -> None:
    with pytest.raises(ValueError):
        canonical_json({"x": float("nan")})
    assert content_hash({"a": 1, "b": [1, "é"]}) == content_hash({"b": [1, "é"], "a": 1})


@pytest.mark.parametrize("payload", [
    {"messages": [{"role": "user", "content": 'say "hi" \\ 日本語\u2028'}], "prompt": None, "sample_index": None,
     "sampling": {"max_tokens": 256, "seed": None, "stop": [], "temperature": 0.0, "top_p": 1.0}},
    {"messages": [], "prompt": "p", "sample_index": 3, "sampling": {"temperature": 0.7},
     "tools": [{"type": "function", "function": {"name": "f", "parameters": {"b": 1, "a": [1.5, True]}}}],
     "tool_choice": "auto", "response_format": {"type": "json_object"}},
])
@pytest.mark.parametrize("identity", [{"provider": "fake", "model": "base"},
                                      {"provider": "hf", "model": "m", "weights": "sha", "api_base": None}])
def test_request_keys_from_payload_json_are_the_request_keys(identity, payload) -> None:
    from workbench.hashing import RequestKeys, request_key

    keys = RequestKeys(identity)  # the adapter's part hashed once, each payload's JSON appended
    assert keys.key(canonical_json(payload)) == request_key(identity, payload)
    assert keys.key(canonical_json(payload)) == keys.key(canonical_json(payload))  # the prefix is not consumed
