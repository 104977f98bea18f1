"""The migration report: the `workbench report` command and what its notebook shows.

    command   runs the pipeline once, then the papermill notebook; writes report.html, verdict.json, manifest.json
    kernel    the notebook's kernel, started (and warmed) while the pipeline runs
    schema_import  jsonschema without its IRI grammar (seconds saved by every nbformat/plotly import)
    view      HTML tables and sections of the report (model output escaped)
    plots     plotly figures, embedded offline
"""
