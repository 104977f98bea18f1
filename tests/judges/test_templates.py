"""Templates, criteria and the judge spec: what goes into a judge prompt and into its cache key."""
from __future__ import annotations

import dataclasses

import pytest
from pydantic import ValidationError

from workbench.errors import InputError
from workbench.judges.criteria import BUILTIN, Criterion, resolve_criteria, resolve_criterion
from workbench.judges.spec import JudgeSpec
from workbench.judges.templates import CHAT_V1, COMPLETION_V1, answer_text, get_template, reask, render
from workbench.models.base import Sampling

FIELDS = {"input": "What is the capital of France?", "reference": "Paris", "response": "Lyon {not a placeholder}"}
PAIR = {"input": "Q?", "reference": "R", "response_a": "first", "response_b": "second"}


def test_builtin_criteria_have_full_rubrics():
    assert set(BUILTIN) == {"correctness", "instruction_following", "fluency", "groundedness", "safety"}
    for criterion in BUILTIN.values():
        text = criterion.rubric_text()
        assert [line.split(":")[0] for line in text.splitlines()] == ["5", "4", "3", "2", "1"]
    assert BUILTIN["correctness"].uses_reference and not BUILTIN["fluency"].uses_reference
    assert BUILTIN["groundedness"].uses_context and not BUILTIN["correctness"].uses_context


def test_verdict_keys_of_criteria_made_before_context_criteria_are_unchanged():
    """Adding `uses_context` must not change the cache key of any verdict stored before it."""
    assert BUILTIN["correctness"].key_part() == {
        "name": "correctness", "description": BUILTIN["correctness"].description,
        "rubric": list(BUILTIN["correctness"].rubric), "uses_reference": True}
    assert BUILTIN["groundedness"].key_part()["uses_context"] is True


def test_criteria_resolution():
    assert resolve_criterion("safety") is BUILTIN["safety"]
    custom = resolve_criterion("Is the reply polite to the customer?")
    assert custom.name == "Is the reply polite to the customer?" and not custom.uses_reference
    with pytest.raises(InputError, match="unknown criterion 'corectness'"):
        resolve_criterion("corectness")
    with pytest.raises(InputError, match="repeated: fluency"):
        resolve_criteria(["fluency", "fluency"])
    with pytest.raises(InputError):
        resolve_criteria([])


def test_reference_shown_only_when_the_criterion_uses_it():
    with_ref = render(CHAT_V1, "pointwise", BUILTIN["correctness"], FIELDS)
    without = render(CHAT_V1, "pointwise", BUILTIN["fluency"], FIELDS)
    assert "[Reference answer]\nParis" in with_ref.messages[-1]["content"]
    assert "Paris" not in without.messages[-1]["content"]
    assert with_ref.messages[0]["role"] == "system" and with_ref.prompt is None
    # braces in model output are content, not placeholders
    assert "Lyon {not a placeholder}" in without.messages[-1]["content"]


def test_completion_prompt_ends_right_before_the_verdict_token():
    point = render(COMPLETION_V1, "pointwise", BUILTIN["fluency"], FIELDS)
    pair = render(COMPLETION_V1, "pairwise", BUILTIN["fluency"], PAIR)
    assert point.prompt.endswith("\nScore:") and not point.messages
    assert pair.prompt.endswith("\nVerdict: [[")
    assert answer_text(COMPLETION_V1, "pairwise", "A]]\nbecause...") == "Verdict: [[A]]"
    assert answer_text(COMPLETION_V1, "pairwise", "B] A]") == "Verdict: [[B]"  # SmolLM2-135M really writes this
    assert answer_text(COMPLETION_V1, "pairwise", "Red, B, C]") == "Verdict: [[Red, B, C]"  # still unparseable
    assert answer_text(COMPLETION_V1, "pointwise", " 4.5\n") == "Score: 4.5"  # still unparseable
    assert answer_text(COMPLETION_V1, "pointwise", "\n 4\nmore") == "Score: 4"
    assert answer_text(CHAT_V1, "pointwise", "x\nScore: 4") == "x\nScore: 4"


def test_reask_is_a_new_deterministic_request():
    first = render(CHAT_V1, "pairwise", BUILTIN["fluency"], PAIR)
    second = reask(CHAT_V1, "pairwise", first, "I like both")
    assert second.messages[:len(first.messages)] == first.messages
    assert second.messages[-2] == {"role": "assistant", "content": "I like both"}
    assert "Verdict: [[A]]" in second.messages[-1]["content"]
    assert reask(CHAT_V1, "pairwise", first, "I like both") == second
    third = reask(CHAT_V1, "pairwise", second, "still both")
    assert len(third.messages) == len(second.messages) + 2
    done = render(COMPLETION_V1, "pointwise", BUILTIN["fluency"], FIELDS)
    again = reask(COMPLETION_V1, "pointwise", done, " great")
    assert again.prompt.startswith(done.prompt + " great\n") and again.prompt.endswith("\nScore:")


def test_template_hash_pins_the_text():
    assert CHAT_V1.text_hash() != COMPLETION_V1.text_hash()
    edited = dataclasses.replace(CHAT_V1, pairwise=dataclasses.replace(CHAT_V1.pairwise, reask="Try again."))
    assert edited.text_hash() != CHAT_V1.text_hash()
    with pytest.raises(InputError, match="unknown judge template"):
        get_template("nope")


def test_spec_fills_and_checks_the_template_hash():
    spec = JudgeSpec(model="fake/judge")
    assert spec.template_hash == CHAT_V1.text_hash() and spec.sampling == CHAT_V1.default_sampling
    assert JudgeSpec(model="fake/judge", template="completion-v1").sampling.max_tokens == 8
    assert JudgeSpec(**spec.model_dump()) == spec  # a saved spec round-trips
    with pytest.raises(ValidationError, match="has changed"):
        JudgeSpec(model="fake/judge", template_hash="0" * 64)
    with pytest.raises(ValidationError, match="temperature"):
        JudgeSpec(model="fake/judge", samples=3)
    with pytest.raises(ValidationError):
        JudgeSpec(model="fake/judge", unknown_field=1)
    assert JudgeSpec(model="fake/judge", samples=3, sampling=Sampling(temperature=0.7)).samples == 3


def test_spec_record_redacts_secret_values_and_key_ignores_options(monkeypatch):
    monkeypatch.setenv("MY_SERVICE_TOKEN", "tok-123456789")
    spec = JudgeSpec(model="litellm/x", options={"api_base": "http://h", "api_key_env": "MY_SERVICE_TOKEN",
                                                   "extra": "sk-secret-value-123", "header": "tok-123456789"})
    record = spec.record({"provider": "litellm", "model": "x"})
    assert record["options"] == {"api_base": "http://h", "api_key_env": "MY_SERVICE_TOKEN",
                                 "extra": "[REDACTED]", "header": "[REDACTED]"}
    assert record["adapter"] == {"provider": "litellm", "model": "x"}
    assert "options" not in spec.key_part()
    with pytest.raises(ValidationError):
        spec.samples = 2  # frozen


def test_custom_criterion_object():
    crit = Criterion(name="brevity", description="Is it short?", rubric=("a", "b", "c", "d", "e"))
    assert crit.rubric_text().splitlines()[0] == "5: e"
    with pytest.raises(ValidationError):
        Criterion(name=" ", description="x", rubric=("a", "b", "c", "d", "e"))
