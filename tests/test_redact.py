"""The redactor: keys and bearer tokens masked in text, JSON values and headers."""

from __future__ import annotations

import json

from workbench.redact import MASK, Redactor

KEY = "sk-proj-Ab3dEf9hIjK"


def test_masks_every_occurrence_and_any_bearer_token():
    r = Redactor([KEY, None, ""])
    text = f"Incorrect API key provided: {KEY}. You sent 'Authorization: Bearer {KEY}' and bearer other-token-123"
    out = r(text)
    assert KEY not in out and "other-token-123" not in out
    assert out.count(MASK) == 3 and "the bearer of" == r("the bearer of")


def test_json_is_redacted_value_by_value_so_escaped_keys_are_caught_and_the_document_stays_valid():
    escaped = "".join(f"\\u{ord(c):04x}" for c in KEY)
    raw = '{"choices": [{"message": {"content": "5 %s"}}], "%s": 1, "created": 1712345678}' % (escaped, KEY)
    data = Redactor([KEY]).json(json.loads(raw))
    assert KEY not in json.dumps(data) and data["choices"][0]["message"]["content"] == f"5 {MASK}"
    assert data["created"] == 1712345678 and data[MASK] == 1


def test_digit_keys_never_break_numbers_in_parsed_json():
    r = Redactor(["12345678"])
    assert r.json({"created": 1234567890, "id": "x12345678"}) == {"created": 1234567890, "id": f"x{MASK}"}


def test_short_placeholders_are_left_alone_and_longer_secrets_win():
    r = Redactor(["x", KEY, KEY[:8]])
    assert r("x marks 5") == "x marks 5"
    assert r(f"{KEY} and {KEY[:8]}") == f"{MASK} and {MASK}"


def test_headers_and_exceptions():
    r = Redactor([KEY])
    assert r.headers({"X-Echo": f"Bearer {KEY}", "x-request-id": "req_1"}) == {"x-echo": f"Bearer {MASK}", "x-request-id": "req_1"}
    assert r.exception(ValueError(f"bad key\n {KEY}")) == f"bad key {MASK}"


# --------------------------------------------------------------------------- every encoding a response can carry a key in

import base64  # noqa: E402
import string  # noqa: E402
from urllib.parse import quote  # noqa: E402

from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

KEY_CHARS = string.ascii_letters + string.digits + "-_./+=~:"
keys = st.text(alphabet=KEY_CHARS, min_size=12, max_size=72).map(lambda s: "sk-" + s)


def _b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


def _json_escaped(key: str) -> str:
    return json.dumps(key)[1:-1].replace("/", "\\/")


ENCODINGS = {
    "as sent": lambda k: k,
    "JSON with escaped slashes": _json_escaped,
    "JSON \\u escapes": lambda k: "".join(f"\\u{ord(c):04x}" for c in k),
    "JSON \\u escapes, upper-case hex, some": lambda k: "".join(f"\\u{ord(c):04X}" if i % 2 else c for i, c in enumerate(k)),
    "JSON inside a JSON string": lambda k: json.dumps(json.dumps({"message": k}).replace("/", "\\/")),
    "URL-encoded": lambda k: quote(k, safe=""),
    "URL-encoded, every character": lambda k: "".join(f"%{b:02x}" for b in k.encode()),
    "URL-encoded twice": lambda k: quote(quote(k, safe=""), safe=""),
    "URL-encoded and JSON-escaped, mixed": lambda k: "".join(
        quote(c, safe="") if i % 3 == 0 else _json_escaped(c) for i, c in enumerate(k)
    ),
    "HTML references": lambda k: "".join(f"&#{ord(c)};" if i % 2 else f"&#x{ord(c):x};" for i, c in enumerate(k)),
    "hex": lambda k: k.encode().hex(),
    "HEX": lambda k: k.encode().hex().upper(),
    "base64 of the key": lambda k: _b64(k),
    "base64 of the Authorization header": lambda k: _b64(f"Bearer {k}"),
    "base64 of the whole header line": lambda k: _b64(f"Authorization: Bearer {k}\r\n"),
    "URL-safe base64 of Basic user:key": lambda k: base64.urlsafe_b64encode(f"user:{k}".encode()).decode(),
    "base64 with escaped slashes": lambda k: _b64(f"xy{k}").replace("/", "\\/"),
    "logprob bytes": lambda k: json.dumps({"token": "x", "bytes": list(k.encode())}),
    "logprob bytes, spaced": lambda k: "[" + ",\n  ".join(str(b) for b in k.encode()) + "]",
    "a 400 hint that masks only Bearer": lambda k: f"hint: header was 'Bearer ***' with {_json_escaped(k)}",
    "bearer then an escaped key": lambda k: f"Authorization: Bearer {_json_escaped(k)}",
}


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(key=keys, before=st.text(max_size=30), after=st.text(max_size=30), encoding=st.sampled_from(sorted(ENCODINGS)))
def test_every_encoding_of_a_key_is_masked(key, before, after, encoding):
    encoded = ENCODINGS[encoding](key)
    out = Redactor([key])(f"{before} {encoded} {after}")
    assert encoded not in out
    assert key not in out
    for fragment in (key[: len(key) // 2 + 4], key[len(key) // 2 - 4 :]):  # nor most of it, in any form found above
        assert fragment not in out or fragment in f"{before} {after}"


@settings(max_examples=150, deadline=None)
@given(key=keys, encoding=st.sampled_from([e for e in sorted(ENCODINGS) if "bytes" not in e and "JSON inside" not in e]))
def test_a_json_document_stays_valid_and_its_parsed_values_lose_the_key(key, encoding):
    encoded = ENCODINGS[encoding](key)
    doc = json.dumps({"error": {"message": "You sent: ", "param": None}, "created": 1712345678})
    raw = doc.replace('"You sent: "', '"You sent: ' + encoded.replace("\\", "\\\\").replace('"', '\\"') + '"')
    if "\\" in encoded and encoding.startswith(("JSON", "bearer", "a 400", "URL-encoded and")):
        raw = doc.replace('"You sent: "', '"You sent: ' + encoded + '"')  # escapes meant as JSON escapes
    r = Redactor([key])
    out = r(raw)
    data = json.loads(out)  # still a document
    assert key not in json.dumps(r.json(data), ensure_ascii=False) and data["created"] == 1712345678


@settings(max_examples=100, deadline=None)
@given(key=keys, other=st.lists(st.integers(0, 255), max_size=20))
def test_lists_of_byte_values_that_spell_the_key_become_the_bytes_of_the_mask(key, other):
    r = Redactor([key])
    spelled = list(key.encode())
    out = r.json({"bytes": other + spelled + other, "numbers": other})
    assert bytes(out["bytes"]).decode("utf-8", "replace").count(MASK) == 1 and out["numbers"] == other
    assert key not in bytes(out["bytes"]).decode("utf-8", "replace")


@settings(max_examples=200, deadline=None)
@given(key=keys, text=st.text(max_size=200))
def test_text_without_the_key_is_left_as_it_is(key, text):
    r = Redactor([key])
    if not r.found(text) and "bearer" not in text.lower():
        assert r(text) == text
    numbers = json.dumps({"created": 1712345678, "logprob": -0.25, "bytes": [49, 50], "top": ["5", "6"]})
    assert r(numbers) == numbers
