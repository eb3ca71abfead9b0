"""A LoRA adapter on the local model: its files, its fingerprint, the model with it merged in.

An adapter folder (made by :mod:`workbench.finetune.lora`) holds peft's
``adapter_config.json`` and ``adapter_model.safetensors`` and the workbench's
``finetune.json`` (the training settings, the base model among them). Giving
such a folder as a local rater's ``model`` rates with the base model plus the
adapter (merged into a private copy of the weights); the rater's weights
fingerprint is sha256 of the base weights' fingerprint and the adapter's.
"""

from __future__ import annotations

import hashlib
import json
import os
import threading
from pathlib import Path
from typing import Any

from workbench.errors import WorkbenchError

ADAPTER_FILE = "adapter_model.safetensors"
SETTINGS_FILE = "finetune.json"


def is_adapter(model: Any) -> bool:
    """True when model names a folder with a trained adapter."""
    if model is None:
        return False
    path = Path(model).expanduser()
    return path.is_dir() and (path / "adapter_config.json").is_file() and (path / SETTINGS_FILE).is_file()


def _base_of(folder: Path) -> str:
    info = json.loads((folder / SETTINGS_FILE).read_text())
    return info["key"]["settings"]["base_model"]


def weights_fingerprint(folder: str | os.PathLike[str]) -> str:
    """The tuned model's fingerprint without loading it."""
    from workbench.raters.local.files import resolve_fingerprint, resolve_model

    folder = Path(folder).expanduser().resolve()
    _name, path = resolve_model(_base_of(folder))
    return tuned_fingerprint(resolve_fingerprint(path), adapter_fingerprint(folder))


def adapter_fingerprint(folder: str | os.PathLike[str]) -> str:
    """sha256 of the adapter's weights and configuration (part of the tuned rater's identity)."""
    folder = Path(folder)
    h = hashlib.sha256()
    for name in ("adapter_config.json", ADAPTER_FILE):
        path = folder / name
        if not path.is_file():
            raise WorkbenchError(f"no trained adapter in {folder} ({name} is missing): run the fine-tune first.")
        h.update(name.encode() + b"\0" + path.read_bytes())
    return "sha256:" + h.hexdigest()


def base_folder(base_model: str) -> tuple[Path, str]:
    """The transformers-format folder of the base model and its weights' fingerprint."""
    from workbench.raters.local.files import convert_gguf, require_packages, resolve_fingerprint, resolve_model

    require_packages("torch", "transformers", "peft")
    _name, path = resolve_model(base_model)
    fingerprint = resolve_fingerprint(path)
    folder = convert_gguf(path, fingerprint) if path.is_file() else path
    return folder, fingerprint


def load_tokenizer(folder: Path) -> Any:
    from transformers import AutoTokenizer

    from workbench.raters.local.files import quiet_transformers

    with quiet_transformers():
        return AutoTokenizer.from_pretrained(str(folder), local_files_only=True)


def fresh_model(folder: Path, device: str, tokenizer: Any = None) -> tuple[Any, Any]:
    """A private copy of the base model (never the shared one :meth:`LocalModel.load` caches)."""
    import warnings

    import torch
    from transformers import AutoModelForCausalLM

    from workbench.raters.local.files import quiet_transformers
    from workbench.raters.local.model import _own_memory

    tokenizer = tokenizer or load_tokenizer(folder)
    with quiet_transformers(), warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)
        model = AutoModelForCausalLM.from_pretrained(str(folder), dtype=torch.float32, local_files_only=True)
    _own_memory(model)
    return model.to(device), tokenizer


_TUNED: dict[tuple[str, str], Any] = {}
_TUNED_LOCK = threading.Lock()


def load_tuned(folder: str | os.PathLike[str]) -> Any:
    """The base model with the adapter merged in, as a LocalModel (cached per process).

    Its ``fingerprint`` is sha256 of the base weights' fingerprint and the adapter's.
    """
    import torch
    from peft import PeftModel

    from workbench.raters.local.model import LocalModel

    folder = Path(folder).resolve()
    adapter_fp = adapter_fingerprint(folder)
    base = _base_of(folder)
    with _TUNED_LOCK:
        if (str(folder), adapter_fp) in _TUNED:
            return _TUNED[(str(folder), adapter_fp)]
        base_dir, base_fp = base_folder(base)
        model, tokenizer = fresh_model(base_dir, "cpu")
        import warnings

        with warnings.catch_warnings():
            warnings.simplefilter("ignore", FutureWarning)
            merged = PeftModel.from_pretrained(model, str(folder)).merge_and_unload()
        merged.eval()
        fingerprint = tuned_fingerprint(base_fp, adapter_fp)
        loaded = LocalModel(f"{base}+{folder.name}", folder, fingerprint, merged, tokenizer, torch.float32)
        _TUNED[(str(folder), adapter_fp)] = loaded
        return loaded


def tuned_fingerprint(base_fp: str, adapter_fp: str) -> str:
    return "sha256:" + hashlib.sha256(f"{base_fp}\0{adapter_fp}".encode()).hexdigest()
