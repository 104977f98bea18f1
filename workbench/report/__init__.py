"""The migration report: the `workbench report` command and what its notebook shows.

    command   runs the papermill notebook after making every call, writes report.html and verdict.json
    view      HTML tables and sections of the report (model output escaped)
    plots     plotly figures, embedded offline
    manifest  what a report was made from (dataset, models, prompts, store, versions)
"""
