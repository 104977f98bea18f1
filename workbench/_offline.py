"""Offline defaults, set before any library that would otherwise reach the network is imported.

Without these, `litellm` fetches a remote cost map at import and `datasets`/`huggingface_hub`
try DNS look-ups. `setdefault` keeps a user's explicit choice.
"""
import os

for _name, _value in {
    "LITELLM_LOCAL_MODEL_COST_MAP": "True",
    "HF_HUB_OFFLINE": "1",
    "HF_DATASETS_OFFLINE": "1",
    "TRANSFORMERS_OFFLINE": "1",
    "HF_HUB_DISABLE_TELEMETRY": "1",
    "TOKENIZERS_PARALLELISM": "false",
}.items():
    os.environ.setdefault(_name, _value)
