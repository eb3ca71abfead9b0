"""backend: openai-batch — rating through the OpenAI Batch API: half the price, answers within 24 hours.

The lifecycle (upload, create, poll, ingest, pick up a batch left waiting) is
in raters/openai/batch.py.
"""

from __future__ import annotations

from workbench.raters.backend import register_backend
from workbench.raters.openai.batch import BatchBackend


@register_backend("openai-batch")
class OpenAIBatch(BatchBackend):
    """The chat requests of the openai backend, sent as one batch at the Batch API's price."""
