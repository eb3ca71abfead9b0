"""backend: local — an open-weight model in this process (Gemma 3 270M by default), exact distributions.

The backend is in raters/local/backend.py, the model in raters/local/model.py.
"""

from __future__ import annotations

from workbench.raters.backend import register_backend
from workbench.raters.local.backend import LocalBackend


@register_backend("local")
class Local(LocalBackend):
    """Gemma 3 270M (or another GGUF or Hugging Face model) in torch, on this machine."""
