"""A user's project folder: finding it, reading its parameters, creating it and checking it.

    lookup    params.toml found upwards, paths resolved in the project, bundled resources, the version
    params    the parameter-file reader every configuration shares (TOML, -p overrides, located errors)
    scaffold  `workbench init`: params.toml, gate.toml, prompts, data and notebooks of a new project
    environment  package versions, platform and git state, for the manifest of a report
    doctor    what a run needs (packages, models, keys) and the command that fixes each missing piece
"""
