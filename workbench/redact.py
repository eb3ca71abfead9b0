"""Keeping API keys out of everything the workbench prints, stores or renders.

A server may echo the ``Authorization`` header (or the key alone) anywhere:
an error body, the answer's content, a logprob token or its ``bytes`` list, a
batch output file, a fine-tuning job's error or events, a response header.
Every response of every request to an OpenAI-style server enters by one door,
``raters/openai/wire.py`` ``receive()``, which hands it to a :class:`Redactor` before
anything reads it: the aiohttp hot path of chat and completions
(``raters/openai/http.py``) calls it, and so does the httpx transport under the
official client, which files, Batch, fine-tuning and the model list use
(``raters/openai/client.py``). So
the key is gone before anything is printed, logged, stored in ``calls``,
``ratings`` or ``jobs``, copied into the DuckDB snapshot or rendered in a
report. The job writer and the fine-tune job row pass what they store through
the same redactor again (the backstop).

What is replaced, by ``***``:

- every occurrence of each secret (the API key, the organisation and project
  ids) of at least ``MIN_SECRET`` characters, in every encoding a response
  can carry it in: as sent; JSON-escaped (``\\/``, ``\\u0073``, doubled
  backslashes of a JSON string inside a JSON string); URL-encoded (``%2F``,
  ``%252F``); HTML character references (``&#47;``); and, for secrets of at
  least ``MIN_ENCODED`` characters, inside base64 (standard or URL-safe, at
  any alignment: so the base64 of ``Authorization: Bearer KEY`` or of a Basic
  ``user:KEY`` is caught) and hex; and as a list of byte values (a logprob's
  ``bytes``: ``[115, 107, ...]``), which becomes the bytes of ``***``;
- any ``Bearer <token>`` (the whole header value, whatever the key).

Characters may mix encodings (``sk%2Dab\\u0063``). Shorter "keys" are
placeholders a local server ignores (``x``), and replacing them would mangle
answers.

JSON is parsed first and redacted value by value (:meth:`Redactor.json`), so
redaction never breaks the document; the raw text kept for the call log is
redacted as text. The common case (no secret anywhere) costs a few substring
searches: the encodings are only decoded when the text holds an escape.
"""

from __future__ import annotations

import base64
import html
import re
from collections.abc import Iterable
from typing import Any
from urllib.parse import unquote

MASK = "***"
MIN_SECRET = 4
MIN_ENCODED = 12  # base64 and hex of shorter secrets are too short to tell from other text
BEARER = re.compile(r"""(?i)\bbearer[\s:="']+(?:\\?["'])?[A-Za-z0-9._~+/=:%\\-]{6,}""")
_MASK_BYTES = ", ".join(str(b) for b in MASK.encode())
_JSON_U = re.compile(r"\\+u([0-9a-fA-F]{4})")


def _hex(value: int, width: int) -> str:
    """A regex matching `value` in hex, `width` digits, either case."""
    return "".join(f"[{d.lower()}{d.upper()}]" if d.isalpha() else d for d in f"{value:0{width}x}")


def _char(c: str) -> str:
    """A regex for one character in any encoding a response can carry it in."""
    alts = [re.escape(c) if c.isalnum() else r"\\*" + re.escape(c)]
    code = ord(c)
    if code > 0xFFFF:
        hi, lo = 0xD800 + ((code - 0x10000) >> 10), 0xDC00 + ((code - 0x10000) & 0x3FF)
        alts.append(rf"\\+u{_hex(hi, 4)}\\+u{_hex(lo, 4)}")
    else:
        alts.append(rf"\\+u{_hex(code, 4)}")
    alts.append("".join(f"%(?:25)?{_hex(b, 2)}" for b in c.encode("utf-8", "surrogatepass")))
    alts.append(rf"&#0*{code};|&#[xX]0*{_hex(code, len(format(code, 'x')))};")
    return "(?:" + "|".join(alts) + ")"


def _base64_fragments(secret: bytes) -> set[str]:
    """The base64 text that any blob holding `secret` contains, whatever the secret's offset in the blob."""
    out = set()
    for pad in range(3):
        for encode in (base64.b64encode, base64.urlsafe_b64encode):
            text = encode(b"\0" * pad + secret + b"\0\0").decode()
            start = -(-pad * 8 // 6)  # the first character made only of the secret's bits
            end = (pad + len(secret)) * 8 // 6  # the last one
            out.add(text[start:end])
    return out


def variants(secret: str) -> set[str]:
    """The literal forms of a secret looked for (before escapes): itself, and its base64 and hex."""
    out = {secret}
    if len(secret) >= MIN_ENCODED:
        raw = secret.encode("utf-8", "surrogatepass")
        out |= _base64_fragments(raw)
        out |= {raw.hex(), raw.hex().upper()}
    return out


def decoded(text: str, punctuation: str = "/") -> str:
    """The text with JSON escapes (``\\uXXXX``, and backslashes before the given punctuation), URL
    encoding (single or double) and HTML references undone. str methods where they do, for speed."""
    if "\\" in text:
        if "\\u" in text:
            text = _JSON_U.sub(lambda m: chr(int(m.group(1), 16)), text)
            try:
                text = text.encode("utf-16", "surrogatepass").decode("utf-16")  # rejoin surrogate pairs
            except UnicodeDecodeError:
                pass
        while "\\\\" in text:
            text = text.replace("\\\\", "\\")
        for c in punctuation:
            text = text.replace("\\" + c, c)
    if "%" in text:
        text = unquote(unquote(text, errors="surrogateescape"), errors="surrogateescape")
    if "&#" in text:
        text = html.unescape(text)
    return text


class Redactor:
    """Replaces the given secrets (in every encoding), and any ``Bearer`` token, by ``***``."""

    def __init__(self, secrets: Iterable[str | None] = ()) -> None:
        kept = {s for s in secrets if s and len(s) >= MIN_SECRET}
        # longest first, so a secret that contains another is replaced whole
        self.secrets = tuple(sorted(kept, key=len, reverse=True))
        literals = {v for s in self.secrets for v in variants(s)}
        self.literals = tuple(sorted(literals, key=len, reverse=True))
        self.longest = max(map(len, self.literals), default=0)
        self._punctuation = "".join(sorted({c for v in self.literals for c in v if not c.isalnum()}))
        self._pattern = None
        self._bytes = self._bytes_start = None
        if self.secrets:
            self._pattern = re.compile("|".join("".join(_char(c) for c in v) for v in self.literals))
            lists = ("".join(rf"{b}\s*,\s*" for b in s.encode("utf-8", "surrogatepass"))[: -len(r"\s*,\s*")] for s in self.secrets)
            self._bytes = re.compile(r"(?<![\d.])(?:" + "|".join(lists) + r")(?![\d.])")
            starts = {rf"{e[0]}\s*,\s*{e[1]}" for e in (s.encode("utf-8", "surrogatepass") for s in self.secrets)}
            self._bytes_start = re.compile("|".join(sorted(starts)))

    def found(self, text: str) -> bool:
        """Whether the text holds a secret in any encoding (cheap when it holds none)."""
        if not self.literals:
            return False
        if any(v in text for v in self.literals):
            return True
        if "\\" in text or "%" in text or "&#" in text:
            clear = decoded(text, self._punctuation)
            if any(v in clear for v in self.literals):
                return True
        # a list of byte values, spaced any way: its first two values first (a literal prefix: a fast scan)
        return self._bytes_start is not None and self._bytes_start.search(text) is not None and self._bytes.search(text) is not None

    def __call__(self, text: str) -> str:
        """The text with every secret and bearer token masked."""
        if not text:
            return text
        if self.found(text):
            assert self._pattern is not None and self._bytes is not None
            text = self._pattern.sub(MASK, text)
            text = self._bytes.sub(_MASK_BYTES, text)
        if "bearer" in text.lower():
            text = BEARER.sub(f"Bearer {MASK}", text)
        return text

    def text(self, value: str | None) -> str | None:
        return None if value is None else self(value)

    def json(self, value: Any) -> Any:
        """A parsed JSON value with every string (keys of objects included) redacted, and every list of
        byte values that spells a secret replaced by the bytes of the mask."""
        if isinstance(value, str):
            return self(value)
        if isinstance(value, dict):
            return {self(k) if isinstance(k, str) else k: self.json(v) for k, v in value.items()}
        if isinstance(value, list):
            if len(value) >= MIN_SECRET and all(type(v) is int and 0 <= v < 256 for v in value):
                spelled = bytes(value).decode("utf-8", "replace")
                clean = self(spelled)
                return value if clean == spelled else list(clean.encode())
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
