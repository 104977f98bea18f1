"""Prompt re-tuning for a migration's candidate model (issue 12).

    from workbench.optimize import OptimizeConfig, optimize
    result = optimize(OptimizeConfig(target="hf/smollm2-135m-instruct", start_prompt="support_chat@v1"))

Modules: config (the one set of parameters), split (dev/test), objective (what is maximised, by the
project's scorers), budget, evaluate (the cached runner), fewshot (demonstrations), gepa_adapter
(instruction rewrites searched by GEPA), trials (the table in the store), search (the rounds),
result (the held-out confirmation, the verdict, the saved version), run (the entry point and its
checks), cli (`workbench optimize`, `workbench prompts`).
"""
from workbench.optimize.config import OptimizeConfig, build_optimize_config


def optimize(config: OptimizeConfig, **kwargs):  # noqa: ANN201 - the heavy module loads on first use
    from workbench.optimize.run import optimize as run  # heavy (pandas): `workbench --help` imports this package

    return run(config, **kwargs)


__all__ = ["OptimizeConfig", "build_optimize_config", "optimize"]
