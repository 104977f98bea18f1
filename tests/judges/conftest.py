"""Fixtures for the judge tests."""
from __future__ import annotations

import pandas as pd
import pytest


@pytest.fixture
def items() -> pd.DataFrame:
    return pd.DataFrame({
        "item_id": ["q1", "q2", "q3"],
        "input": ["What is the capital of France?", "2+2?", "Name a primary colour."],
        "reference": ["Paris", "4", None],
    })

