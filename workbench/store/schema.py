"""The store's schema: numbered migrations and the column lists that every insert names.

`MIGRATIONS[i]` takes a store from schema version i to i + 1 (SQLite's `user_version`). Append a
new migration to change the schema (e.g. `ALTER TABLE runs ADD COLUMN ...`); never edit one that
has shipped, since stores written by it exist. tests/test_store.py pins the resulting schema and
opens a store written by the previous version.
"""
from __future__ import annotations

MIGRATIONS: list[str] = [
    # 1: initial schema
    """
    CREATE TABLE datasets (
        dataset_id TEXT PRIMARY KEY,          -- hash of the canonical item rows
        source TEXT NOT NULL,
        n_items INTEGER NOT NULL,
        created_at REAL NOT NULL
    );
    CREATE TABLE items (
        dataset_id TEXT NOT NULL REFERENCES datasets(dataset_id),
        item_id TEXT NOT NULL,
        input TEXT NOT NULL,
        reference TEXT,
        fields_json TEXT NOT NULL,            -- every column of the row, for templates and slices
        PRIMARY KEY (dataset_id, item_id)
    );
    CREATE TABLE runs (
        run_id INTEGER PRIMARY KEY AUTOINCREMENT,
        model TEXT NOT NULL,                  -- registered name, e.g. hf/smollm2-135m-instruct
        prompt_ref TEXT,                      -- name@version, NULL when the raw input is sent
        dataset_id TEXT NOT NULL REFERENCES datasets(dataset_id),
        spec_json TEXT NOT NULL,              -- adapter identity, sampling, samples, options
        created_at REAL NOT NULL
    );
    CREATE TABLE run_items (
        run_id INTEGER NOT NULL REFERENCES runs(run_id),
        item_id TEXT NOT NULL,
        sample_index INTEGER NOT NULL,
        cache_key TEXT NOT NULL,
        PRIMARY KEY (run_id, item_id, sample_index)
    );
    CREATE TABLE responses (
        cache_key TEXT PRIMARY KEY,           -- sha256 of canonical JSON of adapter identity + request
        model TEXT NOT NULL,
        request_json TEXT NOT NULL,
        text TEXT NOT NULL,
        finish_reason TEXT,
        prompt_tokens INTEGER,
        completion_tokens INTEGER,
        cost_usd REAL,                        -- NULL when the price is unknown, never 0
        latency_s REAL,
        model_version TEXT,
        created_at REAL NOT NULL
    );
    CREATE TABLE call_errors (                -- errors are recorded, never cached
        error_id INTEGER PRIMARY KEY AUTOINCREMENT,
        cache_key TEXT NOT NULL,
        model TEXT NOT NULL,
        item_id TEXT NOT NULL,
        sample_index INTEGER NOT NULL,
        kind TEXT NOT NULL,
        message TEXT NOT NULL,
        attempts INTEGER NOT NULL,
        created_at REAL NOT NULL
    );
    CREATE INDEX call_errors_key ON call_errors(cache_key);
    CREATE TABLE judgments (                  -- cached like responses, keyed by judge spec + inputs
        judge_key TEXT PRIMARY KEY,
        judge_spec_json TEXT NOT NULL,        -- model, template, parameters
        kind TEXT NOT NULL,                   -- pointwise | pairwise
        criterion TEXT NOT NULL,
        item_id TEXT NOT NULL,
        response_key_a TEXT NOT NULL,
        response_key_b TEXT,                  -- pairwise only
        position TEXT,                        -- pairwise: 'ab' (a shown first) or 'ba'
        sample_index INTEGER NOT NULL,
        verdict TEXT,                         -- pairwise: A | B | tie (in the a/b naming, not screen order)
        score REAL,                           -- pointwise: 1..5
        rationale TEXT,
        raw_output TEXT NOT NULL,
        created_at REAL NOT NULL
    );
    CREATE INDEX judgments_item ON judgments(item_id);
    CREATE TABLE judge_errors (
        error_id INTEGER PRIMARY KEY AUTOINCREMENT,
        judge_key TEXT NOT NULL,
        item_id TEXT NOT NULL,
        message TEXT NOT NULL,
        raw_output TEXT,
        created_at REAL NOT NULL
    );
    CREATE TABLE labels (                     -- append-only: one row per rater decision, never updated
        label_id INTEGER PRIMARY KEY AUTOINCREMENT,
        task TEXT NOT NULL,                   -- labeling task name (which comparison)
        item_id TEXT NOT NULL,
        rater TEXT NOT NULL,
        left_model TEXT NOT NULL,             -- the blind assignment that was on screen
        right_model TEXT NOT NULL,
        action TEXT NOT NULL,                 -- left | right | tie | both_bad | skip | undo
        winner_model TEXT,                    -- resolved from action + assignment; NULL for tie/both_bad/skip/undo
        undoes_label_id INTEGER,              -- for action = undo
        note TEXT,
        assignment_seed INTEGER NOT NULL,
        session_id TEXT NOT NULL,
        created_at REAL NOT NULL
    );
    CREATE INDEX labels_task_rater ON labels(task, rater);
    """,
    # 2: prompt optimisation runs and their trials (issue 12)
    """
    CREATE TABLE optimize_runs (
        run_id TEXT PRIMARY KEY,              -- hash of the settings that decide the result: same command, same run
        target TEXT NOT NULL,                 -- the model whose prompt is re-tuned
        start_prompt TEXT NOT NULL,           -- name@version it starts from
        config_json TEXT NOT NULL,
        status TEXT NOT NULL,                 -- running | done | failed
        result_json TEXT,                     -- best prompt, test confirmation, budget spent
        created_at REAL NOT NULL,             -- first start (a resumed run keeps it)
        updated_at REAL NOT NULL
    );
    CREATE TABLE optimize_trials (            -- one row per prompt scored on a whole split, first record kept
        run_id TEXT NOT NULL REFERENCES optimize_runs(run_id),
        trial INTEGER NOT NULL,               -- order within the run (a resumed run replays the same order)
        round INTEGER NOT NULL,               -- 0 start, 1 demonstrations, 2.. instruction rewrites
        split TEXT NOT NULL,                  -- dev | test
        move TEXT NOT NULL,                   -- start | fewshot | instruction | confirm
        prompt_version TEXT NOT NULL,         -- name@version of the trial prompt
        parent_version TEXT,
        prompt_digest TEXT NOT NULL,
        prompt_toml TEXT NOT NULL,            -- the trial prompt itself, so every trial can be rebuilt
        n_items INTEGER NOT NULL,             -- items scored (dev items used as demonstrations are left out)
        score REAL,                           -- mean objective score, with its bootstrap CI
        score_low REAL,
        score_high REAL,
        delta REAL,                           -- paired mean difference to the starting prompt, with its CI
        delta_low REAL,
        delta_high REAL,
        calls INTEGER NOT NULL,               -- distinct model calls needed since the previous trial (budget unit)
        calls_made INTEGER NOT NULL,          -- of those, answered by a model now (the rest by the store)
        cost_usd REAL,                        -- known cost of those calls; NULL when no price is known
        model_s REAL,                         -- time inside the runner (model calls, cache reads)
        wall_s REAL,                          -- time of the whole trial, optimizer bookkeeping included
        item_scores_json TEXT NOT NULL,       -- {item_id: score}
        created_at REAL NOT NULL,
        PRIMARY KEY (run_id, trial)
    );
    """,
    # 3: claims on calls in flight, so processes sharing a store never pay for one call twice (issue 10)
    """
    CREATE TABLE claims (                     -- one row per call an execute is making now, deleted when it ends
        cache_key TEXT PRIMARY KEY,
        owner TEXT NOT NULL,                  -- host/pid-namespace/pid/nonce of the claiming execute
        claimed_at REAL NOT NULL,
        expires_at REAL NOT NULL              -- renewed by the owner while it works; past it anyone may take over
    );
    CREATE INDEX claims_owner ON claims(owner);
    """,
    # 4: the active labeling queue of a task: which items, in which order, with which probability (issue 13)
    """
    CREATE TABLE label_queues (               -- one row per task, written once: the first draw wins
        task TEXT PRIMARY KEY,
        seed INTEGER NOT NULL,                -- the draw's seed
        budget REAL NOT NULL,                 -- expected number of labels the probabilities were fitted to
        n_total INTEGER NOT NULL,             -- items the queue was drawn from
        queue_size INTEGER NOT NULL,
        queue_json TEXT NOT NULL,             -- [[item_id, probability], ...] front first: what the estimator weights by
        created_at REAL NOT NULL
    );
    """,
    # 5: the tool calls a model made beside its text (issue 20); NULL for a text answer and in older stores
    """
    ALTER TABLE responses ADD COLUMN tool_calls_json TEXT;  -- [{name, arguments, raw_arguments, id?, error?}, ...]
    """,
    # 6: metric scores kept, so a warm compare reads them instead of scoring again (issue 25)
    """
    CREATE TABLE scores (                     -- one row per metric x what it read; first write kept
        metric TEXT NOT NULL,                 -- the metric's name (a factory spec included)
        metric_version TEXT NOT NULL,         -- its code version + a hash of its parameters
        response_key TEXT NOT NULL,           -- hash of what the metric reads of the answer (text, tool calls)
        reference_key TEXT NOT NULL,          -- hash of what it reads of the item (reference, language, fields)
        value REAL,                           -- NULL: the metric does not apply (NaN)
        detail_json TEXT,
        created_at REAL NOT NULL,
        PRIMARY KEY (metric, metric_version, response_key, reference_key)
    );
    """,
]

# The same schema versions for PostgreSQL (store/postgres.py): POSTGRES_MIGRATIONS[i] takes a PostgreSQL store
# from version i to i + 1 and gives the tables, columns and indexes MIGRATIONS[i] gives SQLite, in PostgreSQL's
# types: REAL -> DOUBLE PRECISION (PostgreSQL's REAL is 4 bytes), INTEGER -> BIGINT (SQLite's are 8),
# AUTOINCREMENT -> an identity column. SQLite's implicit rowid (the order items and planned calls were written
# in) is the explicit `seq` column. The version lives in a `schema_version` table (PostgreSQL has no
# user_version). Add a migration to both lists at once; tests/store checks they stay the same length.
POSTGRES_MIGRATIONS: list[str] = [
    # 1: initial schema
    """
    CREATE TABLE datasets (
        dataset_id TEXT PRIMARY KEY,
        source TEXT NOT NULL,
        n_items BIGINT NOT NULL,
        created_at DOUBLE PRECISION NOT NULL
    );
    CREATE TABLE items (
        dataset_id TEXT NOT NULL REFERENCES datasets(dataset_id),
        item_id TEXT NOT NULL,
        input TEXT NOT NULL,
        reference TEXT,
        fields_json TEXT NOT NULL,
        seq BIGINT GENERATED ALWAYS AS IDENTITY,  -- SQLite's rowid: items come back in the order saved
        PRIMARY KEY (dataset_id, item_id)
    );
    CREATE TABLE runs (
        run_id BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,
        model TEXT NOT NULL,
        prompt_ref TEXT,
        dataset_id TEXT NOT NULL REFERENCES datasets(dataset_id),
        spec_json TEXT NOT NULL,
        created_at DOUBLE PRECISION NOT NULL
    );
    CREATE TABLE run_items (
        run_id BIGINT NOT NULL REFERENCES runs(run_id),
        item_id TEXT NOT NULL,
        sample_index BIGINT NOT NULL,
        cache_key TEXT NOT NULL,
        seq BIGINT GENERATED ALWAYS AS IDENTITY,  -- SQLite's rowid: a run's calls come back in planned order
        PRIMARY KEY (run_id, item_id, sample_index)
    );
    CREATE TABLE responses (
        cache_key TEXT PRIMARY KEY,
        model TEXT NOT NULL,
        request_json TEXT NOT NULL,
        text TEXT NOT NULL,
        finish_reason TEXT,
        prompt_tokens BIGINT,
        completion_tokens BIGINT,
        cost_usd DOUBLE PRECISION,
        latency_s DOUBLE PRECISION,
        model_version TEXT,
        created_at DOUBLE PRECISION NOT NULL
    );
    CREATE TABLE call_errors (
        error_id BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,
        cache_key TEXT NOT NULL,
        model TEXT NOT NULL,
        item_id TEXT NOT NULL,
        sample_index BIGINT NOT NULL,
        kind TEXT NOT NULL,
        message TEXT NOT NULL,
        attempts BIGINT NOT NULL,
        created_at DOUBLE PRECISION NOT NULL
    );
    CREATE INDEX call_errors_key ON call_errors(cache_key);
    CREATE TABLE judgments (
        judge_key TEXT PRIMARY KEY,
        judge_spec_json TEXT NOT NULL,
        kind TEXT NOT NULL,
        criterion TEXT NOT NULL,
        item_id TEXT NOT NULL,
        response_key_a TEXT NOT NULL,
        response_key_b TEXT,
        position TEXT,
        sample_index BIGINT NOT NULL,
        verdict TEXT,
        score DOUBLE PRECISION,
        rationale TEXT,
        raw_output TEXT NOT NULL,
        created_at DOUBLE PRECISION NOT NULL
    );
    CREATE INDEX judgments_item ON judgments(item_id);
    CREATE TABLE judge_errors (
        error_id BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,
        judge_key TEXT NOT NULL,
        item_id TEXT NOT NULL,
        message TEXT NOT NULL,
        raw_output TEXT,
        created_at DOUBLE PRECISION NOT NULL
    );
    CREATE TABLE labels (
        label_id BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,
        task TEXT NOT NULL,
        item_id TEXT NOT NULL,
        rater TEXT NOT NULL,
        left_model TEXT NOT NULL,
        right_model TEXT NOT NULL,
        action TEXT NOT NULL,
        winner_model TEXT,
        undoes_label_id BIGINT,
        note TEXT,
        assignment_seed BIGINT NOT NULL,
        session_id TEXT NOT NULL,
        created_at DOUBLE PRECISION NOT NULL
    );
    CREATE INDEX labels_task_rater ON labels(task, rater);
    """,
    # 2: prompt optimisation runs and their trials (issue 12)
    """
    CREATE TABLE optimize_runs (
        run_id TEXT PRIMARY KEY,
        target TEXT NOT NULL,
        start_prompt TEXT NOT NULL,
        config_json TEXT NOT NULL,
        status TEXT NOT NULL,
        result_json TEXT,
        created_at DOUBLE PRECISION NOT NULL,
        updated_at DOUBLE PRECISION NOT NULL
    );
    CREATE TABLE optimize_trials (
        run_id TEXT NOT NULL REFERENCES optimize_runs(run_id),
        trial BIGINT NOT NULL,
        round BIGINT NOT NULL,
        split TEXT NOT NULL,
        move TEXT NOT NULL,
        prompt_version TEXT NOT NULL,
        parent_version TEXT,
        prompt_digest TEXT NOT NULL,
        prompt_toml TEXT NOT NULL,
        n_items BIGINT NOT NULL,
        score DOUBLE PRECISION,
        score_low DOUBLE PRECISION,
        score_high DOUBLE PRECISION,
        delta DOUBLE PRECISION,
        delta_low DOUBLE PRECISION,
        delta_high DOUBLE PRECISION,
        calls BIGINT NOT NULL,
        calls_made BIGINT NOT NULL,
        cost_usd DOUBLE PRECISION,
        model_s DOUBLE PRECISION,
        wall_s DOUBLE PRECISION,
        item_scores_json TEXT NOT NULL,
        created_at DOUBLE PRECISION NOT NULL,
        PRIMARY KEY (run_id, trial)
    );
    """,
    # 3: claims on calls in flight (issue 10)
    """
    CREATE TABLE claims (
        cache_key TEXT PRIMARY KEY,
        owner TEXT NOT NULL,
        claimed_at DOUBLE PRECISION NOT NULL,
        expires_at DOUBLE PRECISION NOT NULL
    );
    CREATE INDEX claims_owner ON claims(owner);
    """,
    # 4: the active labeling queue of a task (issue 13)
    """
    CREATE TABLE label_queues (
        task TEXT PRIMARY KEY,
        seed BIGINT NOT NULL,
        budget DOUBLE PRECISION NOT NULL,
        n_total BIGINT NOT NULL,
        queue_size BIGINT NOT NULL,
        queue_json TEXT NOT NULL,
        created_at DOUBLE PRECISION NOT NULL
    );
    """,
    # 5: the tool calls a model made (issue 20)
    """
    ALTER TABLE responses ADD COLUMN tool_calls_json TEXT;
    """,
    # 6: metric scores kept (issue 25)
    """
    CREATE TABLE scores (
        metric TEXT NOT NULL,
        metric_version TEXT NOT NULL,
        response_key TEXT NOT NULL,
        reference_key TEXT NOT NULL,
        value DOUBLE PRECISION,
        detail_json TEXT,
        created_at DOUBLE PRECISION NOT NULL,
        PRIMARY KEY (metric, metric_version, response_key, reference_key)
    );
    """,
]

# Tables every workbench store has; a database with none of them is someone else's.
TABLES = ("datasets", "items", "runs", "run_items", "responses", "call_errors", "judgments", "judge_errors", "labels",
          "optimize_runs", "optimize_trials", "claims", "label_queues", "scores")

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
