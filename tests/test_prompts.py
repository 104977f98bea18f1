"""Prompt versions: strict loading, exact rendering, located errors."""
from __future__ import annotations

import dataclasses
from pathlib import Path

import pandas as pd
import pytest

from workbench.task.dataset import load_items
from workbench.errors import InputError
from workbench.models.base import Request, Sampling
from workbench.task.prompts import PromptVersion, list_prompts, load_prompt

REPO = Path(__file__).resolve().parents[1]
ITEM = {"item_id": "i1", "input": "Where is my order?", "task": "support_reply", "language": "en"}


def write(root: Path, ref: str, text: str) -> Path:
    name, version = ref.split("@")
    path = root / name / f"{version}.toml"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


CHAT = '''
description = "test"
mode = "chat"
system = "Be brief."
user = "{instruction}\\n\\n{input}"
stop = ["###"]
max_tokens = 40

[lookup.instruction]
field = "task"
values = { support_reply = "Reply.", review_summary = "Summarise." }
'''


# --- loading ---------------------------------------------------------------------------------

def test_bundled_prompts_are_listed_and_load():
    refs = list_prompts()
    assert refs == ["support_chat@v1", "support_chat@v2", "support_fewshot@v1", "support_tools@v1"]
    for ref in refs:
        prompt = load_prompt(ref)
        assert prompt.ref == ref and prompt.description and len(prompt.digest) == 64
    assert load_prompt("support_fewshot@v1").mode == "completion"
    assert [t["function"]["name"] for t in load_prompt("support_tools@v1").tools] == [
        "get_order_status", "request_refund", "get_store_hours"]


def test_every_bundled_prompt_renders_every_bundled_item():
    items = load_items(REPO / "data" / "support_reviews.jsonl")
    for ref in list_prompts():
        prompt = load_prompt(ref)
        assert prompt.variables <= set(items.columns)
        rendered = prompt.render_many(row for _, row in items.iterrows())
        assert len(rendered) == len(items)
        texts = [r.prompt if r.prompt is not None else r.messages[-1]["content"] for r in rendered]
        assert all(item in text for item, text in zip(items["input"], texts))
        assert "{" not in "".join(texts)  # no placeholder left unfilled


def test_fewshot_prompt_uses_only_examples_of_the_items_task_and_language():
    prompt = load_prompt("support_fewshot@v1")
    item = {"item_id": "x", "input": "音が小さいです。", "task": "review_summary", "language": "ja"}
    text = prompt.render(item).prompt
    assert text.count("レビュー: ") == 3 and text.endswith("レビュー: 音が小さいです。\n要約:")
    assert "Customer" not in text and "お客様" not in text


def test_list_prompts_sorts_versions_naturally(tmp_path):
    for version in ("v10", "v2", "v1"):
        write(tmp_path, f"p@{version}", CHAT)
    write(tmp_path, "a@v1", CHAT)
    (tmp_path / "notes.toml").write_text("x")  # not <name>/<version>.toml
    refs = list_prompts(tmp_path)
    assert [r for r in refs if r.split("@")[0] in ("a", "p")] == ["a@v1", "p@v1", "p@v2", "p@v10"]
    assert "support_chat@v1" in refs  # the bundled versions are found too


def test_project_prompts_shadow_bundled_ones(tmp_path):
    write(tmp_path, "support_chat@v1", CHAT)
    assert load_prompt("support_chat@v1", tmp_path).source.startswith(str(tmp_path))
    assert load_prompt("support_chat@v1").source != load_prompt("support_chat@v1", tmp_path).source


def test_unknown_key_names_the_file_and_key(tmp_path):
    path = write(tmp_path, "p@v1", 'temperature = 0.2\n' + CHAT)
    with pytest.raises(InputError) as excinfo:
        load_prompt("p@v1", prompts_dir=tmp_path)
    assert f"{path}, field 'temperature': unknown key 'temperature'" in str(excinfo.value)


def test_key_of_the_other_mode_is_an_error(tmp_path):
    path = write(tmp_path, "p@v1", 'template = "{input}"\n' + CHAT)
    with pytest.raises(InputError) as excinfo:
        load_prompt("p@v1", prompts_dir=tmp_path)
    assert f"{path}, field 'template': key 'template' only applies to mode 'completion'" in str(excinfo.value)


def test_missing_required_keys_are_all_reported(tmp_path):
    path = write(tmp_path, "p@v1", 'mode = "completion"\nstop = "x"\nmax_tokens = 0\n')
    with pytest.raises(InputError) as excinfo:
        load_prompt("p@v1", prompts_dir=tmp_path)
    fields = {p.field for p in excinfo.value.problems}
    assert fields == {"description", "template", "stop", "max_tokens"}
    assert all(p.file == str(path) for p in excinfo.value.problems)


def test_invalid_toml_names_the_file(tmp_path):
    path = write(tmp_path, "p@v1", 'description = "unterminated\n')
    with pytest.raises(InputError) as excinfo:
        load_prompt("p@v1", prompts_dir=tmp_path)
    assert str(path) in str(excinfo.value) and "not valid TOML" in str(excinfo.value)


@pytest.mark.parametrize("user", ["{input.upper}", "{0}", "{input!r}", "{input:>9}", "{}", "{input", "x }"])
def test_placeholders_other_than_plain_names_are_refused(tmp_path, user):
    path = write(tmp_path, "p@v1", f'description = "d"\nmode = "chat"\nuser = "{user}"\n')
    with pytest.raises(InputError) as excinfo:
        load_prompt("p@v1", prompts_dir=tmp_path)
    assert f"{path}, field 'user'" in str(excinfo.value)


def test_bad_lookup_and_example_tables(tmp_path):
    text = CHAT + '[lookup.nested]\nfield = ["task", "language"]\nvalues = { support_reply = "flat" }\n' \
                  '[[examples]]\ninput = "no output"\n'
    write(tmp_path, "p@v1", text)
    with pytest.raises(InputError) as excinfo:
        load_prompt("p@v1", prompts_dir=tmp_path)
    assert {p.field for p in excinfo.value.problems} == {"lookup.nested.values", "examples[1]"}


def test_unknown_key_inside_a_lookup_is_named(tmp_path):
    path = write(tmp_path, "p@v1", CHAT + 'default = "x"\n')  # lands in [lookup.instruction]
    with pytest.raises(InputError) as excinfo:
        load_prompt("p@v1", prompts_dir=tmp_path)
    assert f"{path}, field 'lookup.instruction': unknown key(s) default" in str(excinfo.value)


@pytest.mark.parametrize("ref", ["noversion", "../etc@v1", "p@", "p@v1@x"])
def test_malformed_reference(tmp_path, ref):
    write(tmp_path, "p@v1", CHAT)
    with pytest.raises(InputError, match="must look like 'name@version'; available: p@v1"):
        load_prompt(ref, prompts_dir=tmp_path)


def test_unknown_prompt_lists_the_available_ones(tmp_path):
    write(tmp_path, "p@v1", CHAT)
    with pytest.raises(InputError, match="no prompt 'p@v9'; available: p@v1"):
        load_prompt("p@v9", prompts_dir=tmp_path)


def test_prompt_version_is_frozen_and_digest_tracks_content(tmp_path):
    write(tmp_path, "p@v1", CHAT)
    write(tmp_path, "p@v2", CHAT.replace("Be brief.", "Be very brief."))
    v1, v2 = load_prompt("p@v1", prompts_dir=tmp_path), load_prompt("p@v2", prompts_dir=tmp_path)
    with pytest.raises(dataclasses.FrozenInstanceError):
        v1.system = "changed"  # type: ignore[misc]
    assert v1.digest != v2.digest
    assert v1.digest == load_prompt("p@v1", prompts_dir=tmp_path).digest


# --- rendering -------------------------------------------------------------------------------

def test_chat_render_with_lookup(tmp_path):
    write(tmp_path, "p@v1", CHAT)
    rendered = load_prompt("p@v1", prompts_dir=tmp_path).render(ITEM)
    assert rendered.messages == ({"role": "system", "content": "Be brief."},
                                 {"role": "user", "content": "Reply.\n\nWhere is my order?"})
    assert rendered.prompt is None and rendered.stop == ("###",) and rendered.max_tokens == 40


def test_chat_examples_become_user_assistant_turns(tmp_path):
    write(tmp_path, "p@v1", CHAT + '[[examples]]\nmatch = { task = "support_reply" }\ninput = "Hi?"\n'
                                   'output = "Hello."\n[[examples]]\nmatch = { task = "review_summary" }\n'
                                   'input = "Nice."\noutput = "Good."\n')
    messages = load_prompt("p@v1", prompts_dir=tmp_path).render(ITEM).messages
    assert [m["role"] for m in messages] == ["system", "user", "assistant", "user"]
    assert messages[1]["content"] == "Reply.\n\nHi?" and messages[2]["content"] == "Hello."


def test_completion_render_exact_text(tmp_path):
    write(tmp_path, "c@v1", '''
description = "d"
mode = "completion"
preamble = "Answer the {language} customer."
template = "Q: {input}\\nA:"
stop = ["\\n"]

[[examples]]
match = { language = "en" }
input = "Open on Sunday?"
output = "No."

[[examples]]
match = { language = "ja" }
input = "日曜は営業していますか？"
output = "いいえ。"
''')
    rendered = load_prompt("c@v1", prompts_dir=tmp_path).render(ITEM)
    assert rendered.prompt == "Answer the en customer.\n\nQ: Open on Sunday?\nA: No.\n\nQ: Where is my order?\nA:"
    assert rendered.messages == () and rendered.stop == ("\n",) and rendered.max_tokens is None


def test_literal_braces_and_braces_in_item_values(tmp_path):
    write(tmp_path, "j@v1", '''
description = "JSON output"
mode = "completion"
template = \'\'\'Return JSON like {{"sentiment": "positive"}} for: {input}\'\'\'
''')
    item = {"item_id": "b", "input": "I typed {input} and {{x}} on purpose"}
    rendered = load_prompt("j@v1", prompts_dir=tmp_path).render(item)
    assert rendered.prompt == 'Return JSON like {"sentiment": "positive"} for: I typed {input} and {{x}} on purpose'


def test_missing_variable_names_variable_prompt_and_item(tmp_path):
    path = write(tmp_path, "p@v1", CHAT.replace("{input}", "{input} ({product_line})"))
    with pytest.raises(InputError) as excinfo:
        load_prompt("p@v1", prompts_dir=tmp_path).render(ITEM)
    text = str(excinfo.value)
    assert f"{path}, field 'product_line': prompt p@v1, item 'i1': item has no value for variable 'product_line'" in text
    assert len(excinfo.value.problems) == 1


def test_nan_in_a_dataframe_row_counts_as_missing(tmp_path):
    write(tmp_path, "p@v1", CHAT.replace("{input}", "{input} {reference}"))
    row = pd.DataFrame([{**ITEM, "reference": None}]).iloc[0]
    with pytest.raises(InputError, match="variable 'reference'"):
        load_prompt("p@v1", prompts_dir=tmp_path).render(row)


def test_lookup_without_a_case_for_the_item(tmp_path):
    write(tmp_path, "p@v1", CHAT)
    with pytest.raises(InputError) as excinfo:
        load_prompt("p@v1", prompts_dir=tmp_path).render({**ITEM, "task": "translation"})
    text = str(excinfo.value)
    assert "field 'instruction'" in text and "p@v1" in text and "item 'i1'" in text and "task='translation'" in text


def test_render_many_reports_every_bad_item(tmp_path):
    write(tmp_path, "p@v1", CHAT)
    items = [ITEM, {"item_id": "i2", "task": "support_reply"}, {"item_id": "i3", "input": "x", "task": "other"}]
    with pytest.raises(InputError) as excinfo:
        load_prompt("p@v1", prompts_dir=tmp_path).render_many(items)
    messages = [p.message for p in excinfo.value.problems]
    assert len(messages) == 2 and "item 'i2'" in messages[0] and "item 'i3'" in messages[1]


def test_numbers_and_booleans_render_and_match_as_text(tmp_path):
    write(tmp_path, "n@v1", '''
description = "d"
mode = "completion"
template = "{input} x{turns} {vip}:"
[[examples]]
match = { turns = 2, vip = true }
input = "ex"
output = "yes"
''')
    prompt = load_prompt("n@v1", prompts_dir=tmp_path)
    assert prompt.render({**ITEM, "turns": 2, "vip": True}).prompt == "ex x2 true: yes\n\nWhere is my order? x2 true:"
    assert prompt.render({**ITEM, "turns": 3, "vip": True}).prompt == "Where is my order? x3 true:"


def test_to_request_merges_stop_and_caps_max_tokens(tmp_path):
    write(tmp_path, "p@v1", CHAT)
    rendered = load_prompt("p@v1", prompts_dir=tmp_path).render(ITEM)
    request = rendered.to_request("i1", Sampling(temperature=0.7, max_tokens=256, stop=("END", "###")), 3)
    assert isinstance(request, Request)
    assert request.sampling.stop == ("END", "###") and request.sampling.max_tokens == 40
    assert request.sampling.temperature == 0.7 and request.sample_index == 3
    assert request.payload()["messages"][1]["content"] == "Reply.\n\nWhere is my order?"
    assert rendered.to_request("i1", Sampling(max_tokens=10)).sampling.max_tokens == 10


def test_prompt_version_type_is_public():
    assert isinstance(load_prompt("support_chat@v1"), PromptVersion)


# --- history, writing and diffs (issue 12) ----------------------------------------------------

HISTORY = CHAT.replace('description = "test"', '''description = "test"
parent = "p@v1"
author = "optimizer:abc123"
note = "added an instruction"
created = 2026-12-01T10:00:00Z''')


def test_history_keys_load_and_do_not_change_the_digest(tmp_path):
    write(tmp_path, "p@v1", CHAT)
    write(tmp_path, "p@v2", HISTORY)
    v1, v2 = load_prompt("p@v1", prompts_dir=tmp_path), load_prompt("p@v2", prompts_dir=tmp_path)
    assert (v2.parent, v2.author, v2.note) == ("p@v1", "optimizer:abc123", "added an instruction")
    assert v2.created.isoformat() == "2026-12-01T10:00:00+00:00"
    assert v1.parent is None and v1.created is None
    assert v1.digest == v2.digest  # the same prompt is sent: history is metadata


@pytest.mark.parametrize("line, key", [
    ('parent = "no-version"', "parent"),
    ("parent = 3", "parent"),
    ('author = ""', "author"),
    ("note = 1", "note"),
    ('created = "yesterday"', "created"),
    ("created = 2026-12-01T10:00:00", "created"),  # no offset: ambiguous
    ("created = 2026-12-01", "created"),
])
def test_bad_history_keys_are_named(tmp_path, line, key):
    write(tmp_path, "p@v1", CHAT.replace('mode = "chat"', f'mode = "chat"\n{line}'))
    with pytest.raises(InputError, match=f"field '{key}'"):
        load_prompt("p@v1", prompts_dir=tmp_path)


def test_prompt_toml_round_trips_every_bundled_prompt_and_tricky_text():
    import tomllib

    from workbench.task.prompts import prompt_toml

    for ref in [r for r in list_prompts() if r.startswith("support_")]:
        data = load_prompt(ref).data
        assert tomllib.loads(prompt_toml(data)) == data, ref
    tricky = {"description": "quotes \" and ''' and \\ and \t tab", "mode": "chat", "system": "line 1\nit's\n",
              "user": "{input}\r\nend'", "stop": ["\n", "'''"], "max_tokens": 5,
              "lookup": {"x": {"field": ["a", "b"], "values": {"k 1": {"ja": "日本語\n二行"}}}},
              "examples": [{"output": "o", "input": "i", "match": {"task": "t"}}, {"output": "p"}]}
    assert tomllib.loads(prompt_toml(tricky)) == tricky


def test_save_prompt_validates_and_never_overwrites_other_content(tmp_path):
    from workbench.task.prompts import save_prompt

    data = {**load_prompt("support_chat@v1").data, "parent": "support_chat@v1", "author": "me", "note": "n"}
    path = save_prompt(data, "support_chat@v9", tmp_path)
    assert path == tmp_path / "support_chat" / "v9.toml"
    loaded = load_prompt("support_chat@v9", prompts_dir=tmp_path)
    assert loaded.parent == "support_chat@v1" and loaded.digest == load_prompt("support_chat@v1").digest
    assert save_prompt(data, "support_chat@v9", tmp_path) == path  # same content: nothing to do
    with pytest.raises(InputError, match="already exists with other content"):
        save_prompt({**data, "note": "other"}, "support_chat@v9", tmp_path)
    with pytest.raises(InputError, match="field 'mode'"):
        save_prompt({**data, "mode": "poem"}, "support_chat@v10", tmp_path)
    assert not (tmp_path / "support_chat" / "v10.toml").exists()


def test_diff_names_changed_keys_and_shows_lines(tmp_path):
    from workbench.task.prompts import diff_prompts

    write(tmp_path, "p@v1", CHAT)
    write(tmp_path, "p@v2", HISTORY.replace("Be brief.", "Be brief. <b>Answer in UPPERCASE.</b>"))
    diff = diff_prompts(load_prompt("p@v1", prompts_dir=tmp_path), load_prompt("p@v2", prompts_dir=tmp_path))
    assert diff.changed == ("system",) and not diff.same_prompt
    text = diff.text()
    assert text.splitlines()[0] == "p@v1 -> p@v2: changed system"
    assert "p@v2: parent p@v1; by optimizer:abc123; created 2026-12-01T10:00:00+00:00; note: added an instruction" in text
    assert '-system = "Be brief."' in text and '+system = "Be brief. <b>Answer in UPPERCASE.</b>"' in text
    page = diff._repr_html_()
    assert "&lt;b&gt;Answer" in page and "<b>Answer" not in page  # prompt text is escaped in the notebook view
    same = diff_prompts(load_prompt("p@v1", prompts_dir=tmp_path), load_prompt("p@v1", prompts_dir=tmp_path))
    assert same.same_prompt and same.changed == () and "changed nothing sent to the model" in same.text()
