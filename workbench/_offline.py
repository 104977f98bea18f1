"""Offline defaults, set before any library that would otherwise reach the network is imported.

Without these, `litellm` fetches a remote cost map at import and `datasets`/`huggingface_hub`
try DNS look-ups. `setdefault` keeps a user's explicit choice. Library progress bars (weights loading) only on a
terminal: in a notebook or a CI log they are noise, and transformers reads the switch at import.
"""
import os
import sys

for _name, _value in {
    "LITELLM_LOCAL_MODEL_COST_MAP": "True",
    "HF_HUB_OFFLINE": "1",
    "HF_DATASETS_OFFLINE": "1",
    "TRANSFORMERS_OFFLINE": "1",
    "HF_HUB_DISABLE_TELEMETRY": "1",
    "TOKENIZERS_PARALLELISM": "false",
}.items():
    os.environ.setdefault(_name, _value)

if not getattr(sys.stderr, "isatty", lambda: False)():
    os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
