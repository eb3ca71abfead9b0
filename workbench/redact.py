"""Keeping API keys out of everything the workbench prints, stores or renders.

A server may echo the ``Authorization`` header (or the key alone) anywhere:
an error body, the answer's content, a logprob token, a batch output file, a
response header. The HTTP backends pass every response through a
:class:`Redactor` where it enters the workbench (``raters/http.py`` receive()
for chat and completions, ``raters/openai_client.py`` for the official
client the Batch API goes through, ``raters/model_check.py`` for the model
list), so the key is gone before anything is printed, logged, stored in
``calls``, ``ratings`` or ``jobs``, or rendered in a report.

What is replaced, by ``***``:

- every occurrence of each secret (the API key, the organisation and project
  ids) of at least ``MIN_SECRET`` characters; shorter "keys" are placeholders
  a local server ignores (``x``), and replacing them would mangle answers;
- any ``Bearer <token>`` (the whole header value, whatever the key).

JSON is parsed first and redacted value by value (:meth:`Redactor.json`), so a
key written with ``\\u`` escapes is caught too and redaction never breaks the
document; the raw text kept for the call log is redacted as text.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any

MASK = "***"
MIN_SECRET = 4
BEARER = re.compile(r"(?i)\bbearer\s+[A-Za-z0-9._~+/=:-]{6,}")


class Redactor:
    """Replaces the given secrets, and any ``Bearer`` token, by ``***`` in text and JSON values."""

    def __init__(self, secrets: Iterable[str | None] = ()) -> None:
        kept = {s for s in secrets if s and len(s) >= MIN_SECRET}
        # longest first, so a secret that contains another is replaced whole
        self.secrets = tuple(sorted(kept, key=len, reverse=True))
        self._pattern = re.compile("|".join(re.escape(s) for s in self.secrets)) if self.secrets else None

    def __call__(self, text: str) -> str:
        """The text with every secret and bearer token masked."""
        if not text:
            return text
        if self._pattern is not None and any(s in text for s in self.secrets):
            text = self._pattern.sub(MASK, text)
        if "bearer" in text.lower():
            text = BEARER.sub(f"Bearer {MASK}", text)
        return text

    def text(self, value: str | None) -> str | None:
        return None if value is None else self(value)

    def json(self, value: Any) -> Any:
        """A parsed JSON value with every string (keys of objects included) redacted."""
        if isinstance(value, str):
            return self(value)
        if isinstance(value, dict):
            return {self(k) if isinstance(k, str) else k: self.json(v) for k, v in value.items()}
        if isinstance(value, list):
            return [self.json(v) for v in value]
        return value

    def headers(self, headers: Any) -> dict[str, str]:
        """Response headers as a plain dict (lower-case names), values redacted."""
        if headers is None:
            return {}
        plain = {str(k).lower(): str(v) for k, v in headers.items()}
        if self(" ".join(plain.values())) == " ".join(plain.values()):
            return plain  # nothing to mask (the usual case): one check, not one per header
        return {k: self(v) for k, v in plain.items()}

    def exception(self, exc: BaseException) -> str:
        """``str(exc)`` redacted, on one line, cut at 300 characters."""
        return " ".join(self(str(exc)).split())[:300]


NO_SECRETS = Redactor()
