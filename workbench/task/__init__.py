"""The migration task as the user declares it: parameters, dataset and prompt versions.

    config   MigrationConfig, every parameter of a report validated once (params.toml, -p, the notebook)
    dataset  items from jsonl, csv, parquet or a datasets folder, with located errors
    prompts  prompt versions (TOML files), rendered into requests
"""
