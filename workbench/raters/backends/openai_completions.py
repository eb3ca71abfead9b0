"""backend: openai-completions — the text completions endpoint (POST /v1/completions) with ``logprobs: N``.

The request body and the read-out are in raters/openai/completions.py.
"""

from __future__ import annotations

from workbench.raters.backend import register_backend
from workbench.raters.openai.completions import CompletionsBackend


@register_backend("openai-completions")
class OpenAICompletions(CompletionsBackend):
    """A model behind POST /v1/completions: the prompt is sent as text, with no chat template."""
