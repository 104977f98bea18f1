"""The store's schema, declared once: numbered migrations, and the column lists every insert names.

`SCHEMA[i]` takes a store from schema version i to i + 1 (SQLite's `user_version`, PostgreSQL's
`schema_version` table), as operations (store/ddl.py) from which `MIGRATIONS` (SQLite) and
`POSTGRES_MIGRATIONS` are written. Append a migration to change the schema, e.g.
`(AddColumn("runs", optional("note", TEXT)),)` or a new `Table(...)`; never edit one that has
shipped, since stores written by it exist. tests/test_store.py and tests/store pin the resulting
schemas and open stores written by every earlier version (built from the SQL text that shipped).
"""
from __future__ import annotations

from workbench.store.ddl import (
                                 ID,
                                 INTEGER,
                                 ORDER,
                                 REAL,
                                 TEXT,
                                 AddColumn,
                                 Index,
                                 Migration,
                                 Table,
                                 current_columns,
                                 key,
                                 optional,
                                 postgres_script,
                                 required,
                                 sqlite_script,
)

ROW_ORDER = "SQLite's rowid: rows come back in the order they were written"

SCHEMA: list[Migration] = [
    (  # 1: initial schema
        Table("datasets", [
            key("dataset_id", TEXT, "hash of the canonical item rows"),
            required("source", TEXT),
            required("n_items", INTEGER),
            required("created_at", REAL),
        ]),
        Table("items", [
            required("dataset_id", TEXT, references="datasets(dataset_id)"),
            required("item_id", TEXT),
            required("input", TEXT),
            optional("reference", TEXT),
            required("fields_json", TEXT, "every column of the row, for templates and slices"),
            optional("seq", ORDER, ROW_ORDER),
        ], primary_key=("dataset_id", "item_id")),
        Table("runs", [
            key("run_id", ID),
            required("model", TEXT, "registered name, e.g. hf/smollm2-135m-instruct"),
            optional("prompt_ref", TEXT, "name@version, NULL when the raw input is sent"),
            required("dataset_id", TEXT, references="datasets(dataset_id)"),
            required("spec_json", TEXT, "adapter identity, sampling, samples, options"),
            required("created_at", REAL),
        ]),
        Table("run_items", [
            required("run_id", INTEGER, references="runs(run_id)"),
            required("item_id", TEXT),
            required("sample_index", INTEGER),
            required("cache_key", TEXT),
            optional("seq", ORDER, ROW_ORDER),
        ], primary_key=("run_id", "item_id", "sample_index")),
        Table("responses", [
            key("cache_key", TEXT, "sha256 of canonical JSON of adapter identity + request"),
            required("model", TEXT),
            required("request_json", TEXT),
            required("text", TEXT),
            optional("finish_reason", TEXT),
            optional("prompt_tokens", INTEGER),
            optional("completion_tokens", INTEGER),
            optional("cost_usd", REAL, "NULL when the price is unknown, never 0"),
            optional("latency_s", REAL),
            optional("model_version", TEXT),
            required("created_at", REAL),
        ]),
        Table("call_errors", [
            key("error_id", ID),
            required("cache_key", TEXT),
            required("model", TEXT),
            required("item_id", TEXT),
            required("sample_index", INTEGER),
            required("kind", TEXT),
            required("message", TEXT),
            required("attempts", INTEGER),
            required("created_at", REAL),
        ], note="errors are recorded, never cached"),
        Index("call_errors_key", "call_errors", ("cache_key",)),
        Table("judgments", [
            key("judge_key", TEXT),
            required("judge_spec_json", TEXT, "model, template, parameters"),
            required("kind", TEXT, "pointwise | pairwise"),
            required("criterion", TEXT),
            required("item_id", TEXT),
            required("response_key_a", TEXT),
            optional("response_key_b", TEXT, "pairwise only"),
            optional("position", TEXT, "pairwise: 'ab' (a shown first) or 'ba'"),
            required("sample_index", INTEGER),
            optional("verdict", TEXT, "pairwise: A | B | tie (in the a/b naming, not screen order)"),
            optional("score", REAL, "pointwise: 1..5"),
            optional("rationale", TEXT),
            required("raw_output", TEXT),
            required("created_at", REAL),
        ], note="cached like responses, keyed by judge spec + inputs"),
        Index("judgments_item", "judgments", ("item_id",)),
        Table("judge_errors", [
            key("error_id", ID),
            required("judge_key", TEXT),
            required("item_id", TEXT),
            required("message", TEXT),
            optional("raw_output", TEXT),
            required("created_at", REAL),
        ]),
        Table("labels", [
            key("label_id", ID),
            required("task", TEXT, "labeling task name (which comparison)"),
            required("item_id", TEXT),
            required("rater", TEXT),
            required("left_model", TEXT, "the blind assignment that was on screen"),
            required("right_model", TEXT),
            required("action", TEXT, "left | right | tie | both_bad | skip | undo"),
            optional("winner_model", TEXT, "resolved from action + assignment; NULL for tie/both_bad/skip/undo"),
            optional("undoes_label_id", INTEGER, "for action = undo"),
            optional("note", TEXT),
            required("assignment_seed", INTEGER),
            required("session_id", TEXT),
            required("created_at", REAL),
        ], note="append-only: one row per rater decision, never updated"),
        Index("labels_task_rater", "labels", ("task", "rater")),
    ),
    (  # 2: prompt optimisation runs and their trials (issue 12)
        Table("optimize_runs", [
            key("run_id", TEXT, "hash of the settings that decide the result: same command, same run"),
            required("target", TEXT, "the model whose prompt is re-tuned"),
            required("start_prompt", TEXT, "name@version it starts from"),
            required("config_json", TEXT),
            required("status", TEXT, "running | done | failed"),
            optional("result_json", TEXT, "best prompt, test confirmation, budget spent"),
            required("created_at", REAL, "first start (a resumed run keeps it)"),
            required("updated_at", REAL),
        ]),
        Table("optimize_trials", [
            required("run_id", TEXT, references="optimize_runs(run_id)"),
            required("trial", INTEGER, "order within the run (a resumed run replays the same order)"),
            required("round", INTEGER, "0 start, 1 demonstrations, 2.. instruction rewrites"),
            required("split", TEXT, "dev | test"),
            required("move", TEXT, "start | fewshot | instruction | confirm"),
            required("prompt_version", TEXT, "name@version of the trial prompt"),
            optional("parent_version", TEXT),
            required("prompt_digest", TEXT),
            required("prompt_toml", TEXT, "the trial prompt itself, so every trial can be rebuilt"),
            required("n_items", INTEGER, "items scored (dev items used as demonstrations are left out)"),
            optional("score", REAL, "mean objective score, with its bootstrap CI"),
            optional("score_low", REAL),
            optional("score_high", REAL),
            optional("delta", REAL, "paired mean difference to the starting prompt, with its CI"),
            optional("delta_low", REAL),
            optional("delta_high", REAL),
            required("calls", INTEGER, "distinct model calls needed since the previous trial (budget unit)"),
            required("calls_made", INTEGER, "of those, answered by a model now (the rest by the store)"),
            optional("cost_usd", REAL, "known cost of those calls; NULL when no price is known"),
            optional("model_s", REAL, "time inside the runner (model calls, cache reads)"),
            optional("wall_s", REAL, "time of the whole trial, optimizer bookkeeping included"),
            required("item_scores_json", TEXT, "{item_id: score}"),
            required("created_at", REAL),
        ], primary_key=("run_id", "trial"), note="one row per prompt scored on a whole split, first record kept"),
    ),
    (  # 3: claims on calls in flight, so processes sharing a store never pay for one call twice (issue 10)
        Table("claims", [
            key("cache_key", TEXT),
            required("owner", TEXT, "host/pid-namespace/pid/nonce of the claiming execute"),
            required("claimed_at", REAL),
            required("expires_at", REAL, "renewed by the owner while it works; past it anyone may take over"),
        ], note="one row per call an execute is making now, deleted when it ends"),
        Index("claims_owner", "claims", ("owner",)),
    ),
    (  # 4: the active labeling queue of a task: which items, in which order, with which probability (issue 13)
        Table("label_queues", [
            key("task", TEXT),
            required("seed", INTEGER, "the draw's seed"),
            required("budget", REAL, "expected number of labels the probabilities were fitted to"),
            required("n_total", INTEGER, "items the queue was drawn from"),
            required("queue_size", INTEGER),
            required("queue_json", TEXT, "[[item_id, probability], ...] front first: what the estimator weights by"),
            required("created_at", REAL),
        ], note="one row per task, written once: the first draw wins"),
    ),
    (  # 5: the tool calls a model made beside its text (issue 20); NULL for a text answer and in older stores
        AddColumn("responses", optional("tool_calls_json", TEXT, "[{name, arguments, raw_arguments, id?, error?}, ...]")),
    ),
    (  # 6: metric scores kept, so a warm compare reads them instead of scoring again (issue 25)
        Table("scores", [
            required("metric", TEXT, "the metric's name (a factory spec included)"),
            required("metric_version", TEXT, "its code version + a hash of its parameters"),
            required("response_key", TEXT, "hash of what the metric reads of the answer (text, tool calls)"),
            required("reference_key", TEXT, "hash of what it reads of the item (reference, language, fields)"),
            optional("value", REAL, "NULL: the metric does not apply (NaN)"),
            optional("detail_json", TEXT),
            required("created_at", REAL),
        ], primary_key=("metric", "metric_version", "response_key", "reference_key"),
            note="one row per metric x what it read; first write kept"),
    ),
]

MIGRATIONS: list[str] = [sqlite_script(migration) for migration in SCHEMA]
POSTGRES_MIGRATIONS: list[str] = [postgres_script(migration) for migration in SCHEMA]

# Tables every workbench store has; a database with none of them is someone else's.
TABLES = tuple(current_columns(SCHEMA))

# Columns written by the store's inserts (named, so a migration that adds a column breaks none).
DATASET_COLUMNS = ("dataset_id", "source", "n_items", "created_at")
ITEM_COLUMNS = ("dataset_id", "item_id", "input", "reference", "fields_json")
RUN_COLUMNS = ("model", "prompt_ref", "dataset_id", "spec_json", "created_at")
RUN_ITEM_COLUMNS = ("run_id", "item_id", "sample_index", "cache_key")
RESPONSE_COLUMNS = ("cache_key", "model", "request_json", "text", "finish_reason", "prompt_tokens",
                    "completion_tokens", "cost_usd", "latency_s", "model_version", "created_at", "tool_calls_json")
CALL_ERROR_COLUMNS = ("cache_key", "model", "item_id", "sample_index", "kind", "message", "attempts", "created_at")
JUDGMENT_COLUMNS = ("judge_key", "judge_spec_json", "kind", "criterion", "item_id", "response_key_a",
                    "response_key_b", "position", "sample_index", "verdict", "score", "rationale", "raw_output",
                    "created_at")
JUDGE_ERROR_COLUMNS = ("judge_key", "item_id", "message", "raw_output", "created_at")
LABEL_COLUMNS = ("label_id", "task", "item_id", "rater", "left_model", "right_model", "action", "winner_model",
                 "undoes_label_id", "note", "assignment_seed", "session_id", "created_at")
OPTIMIZE_RUN_COLUMNS = ("run_id", "target", "start_prompt", "config_json", "status", "result_json", "created_at",
                        "updated_at")
CLAIM_COLUMNS = ("cache_key", "owner", "claimed_at", "expires_at")
LABEL_QUEUE_COLUMNS = ("task", "seed", "budget", "n_total", "queue_size", "queue_json", "created_at")
SCORE_COLUMNS = ("metric", "metric_version", "response_key", "reference_key", "value", "detail_json", "created_at")
TRIAL_COLUMNS = ("run_id", "trial", "round", "split", "move", "prompt_version", "parent_version", "prompt_digest",
                 "prompt_toml", "n_items", "score", "score_low", "score_high", "delta", "delta_low", "delta_high",
                 "calls", "calls_made", "cost_usd", "model_s", "wall_s", "item_scores_json", "created_at")

# One row per planned call of a run (RUN_FRAME_COLUMNS): the stored answer, else the key's latest error. No
# placeholders: each backend appends its WHERE clause.
RUN_ROWS = """
    SELECT ri.item_id, r.model, r.prompt_ref AS prompt_version, ri.sample_index,
           resp.text AS response, resp.finish_reason, resp.prompt_tokens, resp.completion_tokens,
           resp.latency_s, resp.cost_usd, resp.model_version, resp.tool_calls_json AS tool_calls,
           CASE WHEN resp.cache_key IS NULL THEN
               (SELECT e.message FROM call_errors e WHERE e.cache_key = ri.cache_key
                ORDER BY e.error_id DESC LIMIT 1) END AS error,
           ri.cache_key, r.run_id, r.dataset_id
    FROM run_items ri JOIN runs r ON r.run_id = ri.run_id
    LEFT JOIN responses resp ON resp.cache_key = ri.cache_key"""
