"""Release and retirement dates: the user's file, litellm's map behind it, and the status a
report shows. Bad entries name the file, the model and the field."""
from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest

from workbench.errors import InputError
from workbench.models.lifecycle import Lifecycle, from_litellm, load_registry_file, lookup

TODAY = dt.date(2026, 11, 30)


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "lifecycle.toml"
    path.write_text(text, encoding="utf-8")
    return path


@pytest.mark.parametrize("retires, status", [
    (None, "no retirement date known"),
    (dt.date(2026, 11, 20), "RETIRED 10 days ago"),
    (dt.date(2026, 11, 30), "RETIRES SOON: in 0 days"),
    (dt.date(2027, 2, 28), "RETIRES SOON: in 90 days"),
    (dt.date(2027, 3, 1), "retires in 91 days"),
])
def test_status_warns_within_90_days(retires, status) -> None:
    assert Lifecycle("m", None, retires, "test").status(TODAY) == status


def test_file_entries_win_over_litellm_and_unknown_models_say_so(tmp_path: Path) -> None:
    path = write(tmp_path, '[models."openai/computer-use-preview"]\nreleased = 2025-03-11\nretires = 2026-12-01\n'
                           'note = "pinned by our contract"\n')
    ours, litellm_only, local = lookup(["openai/computer-use-preview", "litellm/computer-use-preview",
                                        "hf/smollm2-135m-instruct"], path)
    assert (ours.released, ours.retires, ours.source, ours.note) == \
        (dt.date(2025, 3, 11), dt.date(2026, 12, 1), str(path), "pinned by our contract")
    assert litellm_only.source == "litellm model map" and litellm_only.retires is not None
    assert (local.retires, local.source) == (None, "unknown")


def test_litellm_map_serves_both_api_providers() -> None:
    import litellm

    expected = dt.date.fromisoformat(litellm.model_cost["computer-use-preview"]["deprecation_date"])
    assert from_litellm("openai/computer-use-preview").retires == expected
    assert from_litellm("litellm/openai/computer-use-preview").retires == expected
    assert from_litellm("hf/computer-use-preview") is None and from_litellm("openai/no-such-model-x") is None


@pytest.mark.parametrize("text, named", [
    ('[models."openai/x"]\nretires = "soon"\n', "openai/x.retires"),
    ('[models."openai/x"]\nreleased = 2024-01-01\nretire = 2026-01-01\n', "unknown field(s) retire"),
    ('[models]\n"openai/x" = 3\n', "model 'openai/x': expected a table"),
    ('[models."openai/x"\n', "lifecycle.toml"),
])
def test_bad_entries_name_file_model_and_field(tmp_path: Path, text: str, named: str) -> None:
    path = write(tmp_path, text)
    with pytest.raises(InputError) as info:
        load_registry_file(path)
    assert str(path) in str(info.value) and named in str(info.value)


def test_bundled_file_loads() -> None:
    entries = load_registry_file(Path(__file__).resolve().parents[1] / "data" / "model_lifecycle.toml")
    assert "hf/smollm2-135m-instruct" in entries and entries["hf/gemma3-270m"].released == dt.date(2025, 8, 14)


def test_successor_is_read_and_checked(tmp_path: Path) -> None:
    from workbench.models.lifecycle import load_registry_file

    path = write(tmp_path, '[models."openai/old"]\nretires = 2026-12-01\nsuccessor = "openai/new"\n')
    assert load_registry_file(path)["openai/old"].successor == "openai/new"
    with pytest.raises(InputError, match=r"openai/old.successor: 'new' is not a model name"):
        load_registry_file(write(tmp_path, '[models."openai/old"]\nsuccessor = "new"\n'))


def test_a_file_checked_long_ago_is_named_stale(tmp_path: Path) -> None:
    import os

    from workbench.models.lifecycle import checked_on, staleness_warning

    dated = write(tmp_path, 'checked = 2026-01-01\n[models."openai/x"]\nretires = 2027-01-01\n')
    assert checked_on(dated) == (dt.date(2026, 1, 1), "its `checked` date")
    assert staleness_warning(dated, dt.date(2026, 6, 30), 180) is None  # 180 days: still fresh
    warning = staleness_warning(dated, TODAY, 180)
    assert f"{dated} was last checked 2026-01-01" in warning and "333 days ago (more than 180)" in warning
    undated = tmp_path / "undated.toml"
    undated.write_text('[models."openai/x"]\n', encoding="utf-8")
    old = dt.datetime(2025, 12, 1, 12).timestamp()
    os.utime(undated, (old, old))
    assert "(its modification time), 364 days ago" in staleness_warning(undated, TODAY, 180)
    assert staleness_warning(None, TODAY) is None and staleness_warning(tmp_path / "missing.toml", TODAY) is None
    with pytest.raises(InputError, match="checked: 'yesterday' is not a date"):
        checked_on(write(tmp_path, 'checked = "yesterday"\n'))


def test_the_bundled_file_is_named_as_the_parameters_name_it_not_by_its_install_path(tmp_path):
    """The report's lifecycle table showed a site-packages path."""
    from workbench.models.lifecycle import lookup
    from workbench.project.lookup import bundled

    entries = lookup(["hf/gemma3-270m"], bundled("data/model_lifecycle.toml"))
    assert entries[0].source == "bundled:model_lifecycle.toml"
    own = tmp_path / "life.toml"
    own.write_text('[models."hf/x"]\nretires = 2030-01-01\n', encoding="utf-8")
    assert lookup(["hf/x"], own)[0].source == str(own)
