"""The migration report: the `workbench report` command and what its notebook shows.

    command   runs the pipeline once, then the papermill notebook; writes report.html, verdict.json, manifest.json
    view      HTML tables and sections of the report (model output escaped)
    plots     plotly figures, embedded offline
"""
