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
