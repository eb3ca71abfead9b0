"""The text completions endpoint (POST /v1/completions) with ``logprobs: N``.

vLLM, llama.cpp's server, text-generation-inference and others serve it. A
base (not instruction-tuned) model answers a few-shot completion prompt
('Word: "dog"\\nRating:') well and a chat prompt badly, so this is the
backend for open-weight base models behind a server.

The request is the filled prompt as ``prompt``, with ``max_tokens``,
``temperature``, ``logprobs: N`` (expected read-out) and ``n`` (samples).
The read-outs are the chat backend's: expected reads the first answer token's
top logprobs, greedy and parsed read the ``text``, samples the ``text`` of
each of the ``n`` choices. Servers give the top logprobs in one of two shapes
(:func:`first_token_top_logprobs` reads both): OpenAI and vLLM the legacy one
(``logprobs.tokens``, ``token_logprobs``, and ``top_logprobs``, a list of
``{token: logprob}`` dicts, one per answer token); llama.cpp's server the
chat one (``logprobs.content``, a list of ``{token, logprob, bytes,
top_logprobs}`` entries whose ``top_logprobs`` are lists of ``{token,
logprob, bytes}``).
"""

from __future__ import annotations

from typing import Any, ClassVar

from workbench.errors import WorkbenchError
from workbench.raters.backend import RaterOptions, ResolvedRater
from workbench.raters.llm import effective_max_tokens, effective_temperature
from workbench.raters.openai.http import BadResponse
from workbench.raters.openai.server import ServerBackend, ServerOptions
from workbench.raters.readout import (
    Readout,
    expected_from_top_logprobs,
    greedy_from_answer,
    mean_of_samples,
    parsed_from_answer,
)


class CompletionsOptions(ServerOptions):
    """Options of openai-completions: the server options (top_logprobs is sent as ``logprobs``)."""


class CompletionsBackend(ServerBackend):
    """A model behind POST /v1/completions: the prompt is sent as text, with no chat template."""

    Options: ClassVar[type[RaterOptions]] = CompletionsOptions
    path = "/completions"

    def body(self, rater: ResolvedRater, item: str) -> dict[str, Any]:
        spec = rater.spec
        assert rater.prompt is not None
        body: dict[str, Any] = {
            "model": spec.model,
            "prompt": rater.prompt.render(item),
            "max_tokens": effective_max_tokens(spec),
            "temperature": effective_temperature(spec),
        }
        if spec.readout == "expected":
            body["logprobs"] = spec.top_logprobs
        if spec.readout == "samples":
            body["n"] = spec.samples
        return body

    def read(self, rater: ResolvedRater, response: dict[str, Any]) -> Readout:
        choices = response.get("choices") if isinstance(response, dict) else None
        if not choices or not isinstance(choices, list) or not all(isinstance(c, dict) for c in choices):
            raise BadResponse("the response has no choices")
        readout, points = rater.spec.readout, rater.points
        if readout == "samples":
            return mean_of_samples([c.get("text") for c in choices], points)
        answer = choices[0].get("text")
        if readout == "greedy":
            return greedy_from_answer(answer, points)
        if readout == "parsed":
            return parsed_from_answer(answer, points)
        top = first_token_top_logprobs(choices[0].get("logprobs"))
        try:
            result = expected_from_top_logprobs(top, points, min_mass=rater.spec.min_mass)
        except WorkbenchError as exc:
            raise BadResponse(f"the response's logprobs are malformed: {exc}") from None
        return Readout(
            value=result.value, distribution=result.distribution, mass=result.mass, low_mass=result.low_mass,
            answer=answer, reason=result.reason,
        )  # fmt: skip


def first_token_top_logprobs(logprobs: Any) -> dict[str, Any] | list[Any]:
    """The first answer token's top logprobs in a text completion's ``logprobs``, in either shape.

    Legacy (OpenAI, vLLM): ``{"tokens": [...], "token_logprobs": [...], "top_logprobs": [{token: logprob}, ...]}``;
    chat-like (llama.cpp's server): ``{"content": [{"token", "logprob", "bytes", "top_logprobs": [{"token",
    "logprob", "bytes"}, ...]}, ...]}``. Returns the dict or the list of entries, for
    :func:`~workbench.raters.readout.expected_from_top_logprobs`; BadResponse when neither shape holds any.
    """
    if isinstance(logprobs, dict):
        legacy = logprobs.get("top_logprobs")
        if isinstance(legacy, list) and legacy and legacy[0]:
            return legacy[0]
        content = logprobs.get("content")
        if isinstance(content, list) and content:
            if not isinstance(content[0], dict):
                raise BadResponse("the response's logprobs are malformed: logprobs.content[0] is not an object")
            top = content[0].get("top_logprobs")
            if top:
                return top
    raise BadResponse(
        "the response has no logprobs (neither logprobs.top_logprobs nor logprobs.content[0].top_logprobs): "
        "does the server support logprobs on /v1/completions?"
    )
