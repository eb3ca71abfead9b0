"""A LoRA adapter on the local model: the base model with the adapter merged in, and the one door by name.

An adapter folder (made by :mod:`workbench.finetune.lora`; its files and
fingerprint are in :mod:`workbench.raters.local.files`, which decides what is
an adapter) given as a local rater's ``model`` rates with the base model plus
the adapter, merged into a private copy of the weights. :func:`load_model`
loads any local model by name: an adapter folder this way, anything else with
:meth:`LocalModel.load`.
"""

from __future__ import annotations

import os
import threading
import warnings
from pathlib import Path
from typing import Any

from workbench.raters.local.files import (
    adapter_base,
    adapter_fingerprint,
    convert_gguf,
    is_adapter,
    quiet_transformers,
    require_packages,
    resolve_fingerprint,
    resolve_model,
    tuned_fingerprint,
)
from workbench.raters.local.model import LocalModel, own_memory, set_threads


def load_model(model: str | os.PathLike[str] | None = None, *, dtype: Any = "float32", threads: int | None = None) -> LocalModel:
    """A loaded local model by any name :class:`LocalOptions` takes: an adapter folder (merged onto its
    base, float32) or what :meth:`LocalModel.load` takes."""
    if is_adapter(model):  # a LoRA adapter folder (workbench finetune): the base model with it merged in
        require_packages("torch", "transformers")
        set_threads(threads)
        return load_tuned(model)  # type: ignore[arg-type]
    return LocalModel.load(model, dtype=dtype, threads=threads)


def base_folder(base_model: str) -> tuple[Path, str]:
    """The transformers-format folder of the base model and its weights' fingerprint."""
    require_packages("torch", "transformers", "peft")
    _name, path = resolve_model(base_model)
    fingerprint = resolve_fingerprint(path)
    folder = convert_gguf(path, fingerprint) if path.is_file() else path
    return folder, fingerprint


def load_tokenizer(folder: Path) -> Any:
    from transformers import AutoTokenizer

    with quiet_transformers():
        return AutoTokenizer.from_pretrained(str(folder), local_files_only=True)


def fresh_model(folder: Path, device: str, tokenizer: Any = None) -> tuple[Any, Any]:
    """A private copy of the base model (never the shared one :meth:`LocalModel.load` caches)."""
    import torch
    from transformers import AutoModelForCausalLM

    tokenizer = tokenizer or load_tokenizer(folder)
    with quiet_transformers(), warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)
        model = AutoModelForCausalLM.from_pretrained(str(folder), dtype=torch.float32, local_files_only=True)
    own_memory(model)
    return model.to(device), tokenizer


_TUNED: dict[tuple[str, str], Any] = {}
_TUNED_LOCK = threading.Lock()


def load_tuned(folder: str | os.PathLike[str]) -> LocalModel:
    """The base model with the adapter merged in, as a LocalModel (cached per process).

    Its ``fingerprint`` is sha256 of the base weights' fingerprint and the adapter's.
    """
    import torch
    from peft import PeftModel

    folder = Path(folder).resolve()
    adapter_fp = adapter_fingerprint(folder)
    base = adapter_base(folder)
    with _TUNED_LOCK:
        if (str(folder), adapter_fp) in _TUNED:
            return _TUNED[(str(folder), adapter_fp)]
        base_dir, base_fp = base_folder(base)
        model, tokenizer = fresh_model(base_dir, "cpu")
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", FutureWarning)
            merged = PeftModel.from_pretrained(model, str(folder)).merge_and_unload()
        merged.eval()
        fingerprint = tuned_fingerprint(base_fp, adapter_fp)
        loaded = LocalModel(f"{base}+{folder.name}", folder, fingerprint, merged, tokenizer, torch.float32)
        _TUNED[(str(folder), adapter_fp)] = loaded
        return loaded
