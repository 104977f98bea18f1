"""LLM judges: pointwise rubric scores and pairwise verdicts (both orders), with any registered model.

    spec = JudgeSpec(model="litellm/gpt-4o-mini")            # or "hf/...", template="completion-v1"
    result = judge_pairwise(store, spec, items, baseline_df, candidate_df, "correctness")
    result.verdicts  # one row per item: verdict_ab, verdict_ba, verdict (A|B|tie), consistent, ...

Judge calls are ordinary cached model calls (`workbench.generation.calls.execute`); parsed verdicts are
cached in the store's `judgments` table by a hash of the spec and the judged contents, and every
unparseable or failed judgment is recorded in `judge_errors` — never turned into a tie.
"""
from workbench.judges.criteria import BUILTIN as BUILTIN_CRITERIA
from workbench.judges.criteria import Criterion, resolve_criterion
from workbench.judges.engine import JudgeStats
from workbench.judges.pairwise import PairwiseResult, ajudge_pairwise, candidate_score, judge_pairwise
from workbench.judges.parse import ParseError, parse_score, parse_verdict
from workbench.judges.pointwise import PointwiseResult, ajudge_pointwise, judge_pointwise
from workbench.judges.spec import JudgeSpec
from workbench.judges.templates import TEMPLATES

__all__ = ["BUILTIN_CRITERIA", "Criterion", "JudgeSpec", "JudgeStats", "PairwiseResult", "ParseError",
           "PointwiseResult", "TEMPLATES", "ajudge_pairwise", "ajudge_pointwise", "candidate_score", "judge_pairwise", "judge_pointwise",
           "parse_score", "parse_verdict", "resolve_criterion"]
