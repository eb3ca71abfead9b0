"""The chat completions request a rater sends for one item, and the rating read from the response.

Shared by the openai backend (one request per item) and the openai-batch
backend (the same bodies in a JSONL file). Bodies and responses are plain
JSON dicts: what is sent is exactly what is logged.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Any, ClassVar

from pydantic import Field
from sqlalchemy.orm import Session

from workbench.files import read_text_or_file
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


class ChatOptions(ServerOptions):
    """Options of the chat backends (openai, openai-batch)."""

    system: str | None = Field(None, description="system prompt, a file relative to the study or the text")

    derived_fields: ClassVar[frozenset[str]] = ServerOptions.derived_fields | {"system"}


def request_body(resolved: ResolvedRater, item: str) -> dict[str, Any]:
    """The chat completions body for one item."""
    spec = resolved.spec
    assert resolved.prompt is not None
    messages = []
    if resolved.system:
        messages.append({"role": "system", "content": resolved.system})
    messages.append({"role": "user", "content": resolved.prompt.render(item)})
    body: dict[str, Any] = {
        "model": spec.model,
        "messages": messages,
        "max_tokens": effective_max_tokens(spec),
        "temperature": effective_temperature(spec),
    }
    if spec.readout == "expected":
        body["logprobs"] = True
        body["top_logprobs"] = spec.top_logprobs
    if spec.readout == "samples":
        body["n"] = spec.samples
    return body


def read_rating(resolved: ResolvedRater, response: dict[str, Any]) -> Readout:
    """The rating in a chat completion; BadResponse when the response lacks what the read-out needs."""
    choices = response.get("choices") if isinstance(response, dict) else None
    if not choices or not isinstance(choices, list):
        raise BadResponse("the response has no choices")
    readout = resolved.spec.readout
    points = resolved.points
    if readout == "samples":
        return mean_of_samples([_content(c) for c in choices], points)
    choice = choices[0]
    answer = _content(choice)
    if readout == "greedy":
        return greedy_from_answer(answer, points)
    if readout == "parsed":
        return parsed_from_answer(answer, points)
    content = ((choice.get("logprobs") or {}).get("content")) or []
    if not content or not content[0].get("top_logprobs"):
        raise BadResponse("the response has no logprobs: does the server support logprobs/top_logprobs?")
    result = expected_from_top_logprobs(content[0]["top_logprobs"], points, min_mass=resolved.spec.min_mass)
    return Readout(
        value=result.value, distribution=result.distribution, mass=result.mass, low_mass=result.low_mass,
        answer=answer, reason=result.reason,
    )  # fmt: skip


def _content(choice: Any) -> str | None:
    if not isinstance(choice, dict):
        raise BadResponse("a choice is not an object")
    message = choice.get("message") or {}
    return message.get("content")


class ChatBackend(ServerBackend):
    """A model behind POST /chat/completions: the user message is the filled prompt, with an optional system message."""

    Options: ClassVar[type[RaterOptions]] = ChatOptions
    path = "/chat/completions"

    def resolve(self, session: Session, rater: ResolvedRater, *, base_dir: Path) -> ResolvedRater:
        rater = super().resolve(session, rater, base_dir=base_dir)
        system = read_text_or_file(rater.spec.system, base_dir)
        return replace(rater, system=system, identity=dict(rater.identity, system=system))

    def body(self, rater: ResolvedRater, item: str) -> dict[str, Any]:
        return request_body(rater, item)

    def read(self, rater: ResolvedRater, response: dict[str, Any]) -> Readout:
        return read_rating(rater, response)

    def low_mass_cause(self, rater: ResolvedRater) -> str | None:
        return (
            "the model's answers do not start with the number: check that the server applies the model's chat "
            "template (llama.cpp's server: --jinja), that the model is instruction-tuned (a base model answers "
            "better through openai-completions), and that the prompt asks for a single number"
        )
