"""Loaded at start-up by the `workbench generate` process of bench/bench_store_run.py's "sqlalchemy"
case (this folder is put first on its PYTHONPATH): the writes a run makes (save_items, create_run,
put_response) go through SQLAlchemy Core, one engine per store and `engine.begin()` per unit of
work, as adopting it would. Reads stay on the store's own connection. Bench only: SQLAlchemy is
not a dependency of the workbench."""
from __future__ import annotations

import json
import time
from typing import Any


def _install() -> None:
    from bench.bench_store_writes import _dialect_insert, _sa_engine, _sa_tables
    from workbench.items.tool_calls import calls_to_json
    from workbench.store.postgres import PostgresStore
    from workbench.store.sqlite import SQLiteStore
    from workbench.values import is_missing

    def engine(store: Any) -> Any:
        if "_sa" not in store.__dict__:
            location = getattr(store, "url", None) or str(store.path)
            _md, tables = _sa_tables()
            insert = _dialect_insert(location)
            upsert = insert(tables["responses"])
            upsert = upsert.on_conflict_do_update(
                index_elements=["cache_key"],
                set_={c.name: upsert.excluded[c.name] for c in tables["responses"].c if c.name != "cache_key"})
            store._sa = (_sa_engine(location), tables, insert, upsert)
        return store._sa

    def save_items(self: Any, dataset_id: str, source: str, items: Any) -> None:
        eng, t, insert, _upsert = engine(self)
        with eng.begin() as conn:
            if conn.execute(t["datasets"].select().where(t["datasets"].c.dataset_id == dataset_id)).first():
                return
            rows = [{"dataset_id": dataset_id, "item_id": rec["item_id"], "input": rec["input"],
                     "reference": None if is_missing(rec.get("reference")) else str(rec.get("reference")),
                     "fields_json": json.dumps(rec, ensure_ascii=False, default=str, sort_keys=True)}
                    for rec in items.to_dict(orient="records")]
            conn.execute(insert(t["datasets"]).on_conflict_do_nothing(),
                         {"dataset_id": dataset_id, "source": source, "n_items": len(items), "created_at": time.time()})
            conn.execute(insert(t["items"]).on_conflict_do_nothing(), rows)

    def create_run(self: Any, model: str, prompt_ref: Any, dataset_id: str, spec: dict, planned: Any) -> int:
        eng, t, _insert, _upsert = engine(self)
        with eng.begin() as conn:
            run_id = conn.execute(t["runs"].insert().returning(t["runs"].c.run_id), {
                "model": model, "prompt_ref": prompt_ref, "dataset_id": dataset_id,
                "spec_json": json.dumps(spec, sort_keys=True, default=str), "created_at": time.time()}).scalar_one()
            conn.execute(t["run_items"].insert(), [{"run_id": run_id, "item_id": item, "sample_index": int(sample),
                                                    "cache_key": key} for item, sample, key in planned])
        return int(run_id)

    def put_response(self: Any, cache_key: str, model: str, request: dict, response: Any) -> None:
        eng, _t, _insert, upsert = engine(self)
        with eng.begin() as conn:
            conn.execute(upsert, {
                "cache_key": cache_key, "model": model,
                "request_json": json.dumps(request, ensure_ascii=False, sort_keys=True), "text": response.text,
                "finish_reason": response.finish_reason, "prompt_tokens": response.prompt_tokens,
                "completion_tokens": response.completion_tokens, "cost_usd": response.cost_usd,
                "latency_s": response.latency_s, "model_version": response.model_version, "created_at": time.time(),
                "tool_calls_json": calls_to_json(response.tool_calls)})

    for cls in (SQLiteStore, PostgresStore):
        cls.save_items, cls.create_run, cls.put_response = save_items, create_run, put_response


_install()
