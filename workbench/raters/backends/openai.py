"""backend: openai — any OpenAI-compatible chat completions server, one request per item.

The request and the read-out are in raters/openai/chat.py (shared with
openai-batch); concurrency and retries in raters/openai/http.py.
"""

from __future__ import annotations

from workbench.raters.backend import register_backend
from workbench.raters.openai.chat import ChatBackend


@register_backend("openai")
class OpenAIChat(ChatBackend):
    """Chat completions with logprobs: expected, greedy, parsed or samples read-outs."""
