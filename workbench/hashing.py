"""Canonical JSON and content hashes: the basis of every cache key and manifest hash."""
from __future__ import annotations

import hashlib
import json
from typing import Any


def canonical_json(value: Any) -> str:
    """JSON with sorted keys and no whitespace; raises on objects JSON cannot represent
    (hashing `str()` of an object would make keys that silently collide or drift)."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False)


def content_hash(value: Any) -> str:
    return hashlib.sha256(canonical_json(value).encode("utf-8")).hexdigest()


def request_key(adapter_identity: dict[str, Any], request_payload: dict[str, Any]) -> str:
    """Cache key of one model call: everything that changes the output, nothing that does not
    (timeout, concurrency and retry settings are deliberately absent)."""
    return content_hash({"adapter": adapter_identity, "request": request_payload})
