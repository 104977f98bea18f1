"""Generation: requests through the adapters into the store, cached, retried and bounded.

    runner   a run per (model, prompt version): preflight renders every request once, generate sends them
    calls    the one owner of cache look-up, claims, retries, concurrency and per-item error records
    retry    when to retry a failed call and how long to wait (pure arithmetic)
    options  per-model adapter options (params.toml's [model_options."<model>"], --model-options FILE)
"""
