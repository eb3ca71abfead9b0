"""What the backends that call an OpenAI-compatible server share: options, price, dry-run estimate, key.

A server backend names the path it posts to, builds one request body per
item and reads the rating from a response; :class:`ServerBackend` does the
rest (one request per item, many in flight, retries: see raters/openai/http.py).
"""

from __future__ import annotations

import os
from typing import Any, ClassVar

from pydantic import Field

from workbench.errors import WorkbenchError
from workbench.raters.backend import Estimate, RaterOptions, ResolvedRater, RunJob
from workbench.raters.llm import LLMBackend, SamplingOptions, effective_max_tokens
from workbench.raters.pricing import Price, Rate, estimate_tokens, price_of
from workbench.raters.readout import Readout, single_token_scale


class ServerOptions(SamplingOptions):
    """Options of a backend that rates through an OpenAI-compatible server."""

    model: str = Field(description="model name on the server")  # type: ignore[assignment]
    base_url: str | None = Field(None, description="an OpenAI-compatible server, e.g. http://127.0.0.1:8000/v1")
    api_key_env: str = Field("OPENAI_API_KEY", description="environment variable holding the API key (never stored)")
    price: Price | None = Field(None, description="price per million tokens, when the built-in table does not know the model")
    # how the job runs (not part of the rater's identity)
    concurrency: int = Field(16, ge=1, le=1024, description="requests in flight")
    timeout: float = Field(60, gt=0, description="seconds per request")
    max_retries: int = Field(5, ge=0, le=50)
    rpm: int | None = Field(None, ge=1, description="the server's limit in requests per minute: requests are paced under it")
    tpm: int | None = Field(None, ge=1, description="the server's limit in tokens per minute (prompt + max_tokens per request)")

    run_fields: ClassVar[frozenset[str]] = RaterOptions.run_fields | {
        "api_key_env", "price", "concurrency", "timeout", "max_retries", "rpm", "tpm",
    }  # fmt: skip


class ServerBackend(LLMBackend):
    """A language model behind an OpenAI-compatible HTTP API. Subclasses give path, body and read."""

    Options: ClassVar[type[RaterOptions]] = ServerOptions
    path: ClassVar[str] = "/chat/completions"
    batch: ClassVar[bool] = False  # priced at the Batch API's discount
    bills: ClassVar[bool] = True

    def body(self, rater: ResolvedRater, item: str) -> dict[str, Any]:
        """The request body for one item."""
        raise NotImplementedError

    def read(self, rater: ResolvedRater, response: dict[str, Any]) -> Readout:
        """The rating in a response; raises http.BadResponse when the response lacks what the read-out needs."""
        raise NotImplementedError

    def check(self, rater: ResolvedRater) -> None:
        """Refuse, before any request, a read-out the server cannot give for this scale."""
        if rater.spec.readout == "expected" and not single_token_scale(rater.points):
            lo, hi = rater.scale
            raise WorkbenchError(
                f"raters.{rater.name}: the expected read-out needs scale points that are single tokens, "
                f"and {lo:g}-{hi:g} has points that are not: the server's top logprobs cover only the first token. "
                "Use readout: greedy or parsed, or backend: local, which scores whole continuations."
            )

    def price(self, rater: ResolvedRater) -> Rate | None:
        return price_of(rater.spec.model or "", override=rater.spec.price, batch=self.batch)

    def estimate(self, rater: ResolvedRater, texts: dict[int, str]) -> Estimate:
        spec = rater.spec
        prompt_tokens = 0
        for text in texts.values():
            body = self.body(rater, text)
            prompt_tokens += (
                sum(estimate_tokens(m["content"]) for m in body["messages"]) if "messages" in body else estimate_tokens(body["prompt"])
            )
        per_answer = effective_max_tokens(spec) * (spec.samples if spec.readout == "samples" else 1)
        completion_tokens = per_answer * len(texts)
        rate = self.price(rater)
        cost = rate.cost(prompt_tokens, completion_tokens) if rate is not None else None
        return Estimate(len(texts), prompt_tokens, completion_tokens, cost)

    def secrets(self, rater: ResolvedRater) -> list[str]:
        key = os.environ.get(rater.spec.api_key_env)
        return [key] if key else []

    def check_server(self, rater: ResolvedRater) -> str | None:
        """Where the server lists its models, refuse a model name it does not list (dry run); else say why not checked."""
        from workbench.raters.openai.http import check_model_name, org_headers
        from workbench.redact import Redactor

        key = os.environ.get(rater.spec.api_key_env)
        if not key:
            return f"Model {rater.spec.model!r} not checked: ${rater.spec.api_key_env} is not set."
        return check_model_name(rater, key, Redactor([key, *org_headers().values()]))

    def run(self, rater: ResolvedRater, texts: dict[int, str], job: RunJob) -> str:
        from workbench.raters.openai.http import run_requests

        return run_requests(
            rater, texts, job, path=self.path,
            body_of=lambda item: self.body(rater, item), read=lambda response: self.read(rater, response),
        )  # fmt: skip
