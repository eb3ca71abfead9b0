"""The rating interface, generated from the dimension: one word, the scale's points as choices with
keys 1..N (one key press per word), and "I don't know this word" as the Glasgow procedure had.

A choice's ``alias`` is what the annotation stores: the point's number, or ``unknown``.
"""

from __future__ import annotations

import hashlib
import html
import json
import re
from xml.sax.saxutils import quoteattr

from workbench.scale import point_label

UNKNOWN = "unknown"
UNKNOWN_LABEL = "I don't know this word"
FROM_NAME, TO_NAME = "rating", "word"


def hotkeys(points: list[float]) -> tuple[list[str | None], str]:
    """Keys for the points and for "I don't know this word".

    A scale of whole numbers within 0-9 is typed as its numbers (press 5 for 5); another scale of at
    most nine points gets 1..N in order; a longer one gets no keys. "I don't know" is 0, or u when 0 is taken.
    """
    if all(float(p).is_integer() and 0 <= p <= 9 for p in points):
        keys: list[str | None] = [str(int(p)) for p in points]
    elif len(points) <= 9:
        keys = [str(i + 1) for i in range(len(points))]
    else:
        keys = [None] * len(points)
    return keys, ("u" if "0" in keys else "0")


def point_text(point: float, labels: dict[str, str] | None) -> str:
    """A scale point as annotators see it, on its button and in the instructions alike: "1 (never)", or "4"."""
    name = point_label(point)
    labels = labels or {}
    label = labels.get(name) or labels.get(str(point)) or labels.get(f"{point:g}")
    return f"{name} ({label})" if label else name


KEY_COMMENT = "<!-- {key}: the key workbench finds this project by; annotators do not see it -->"
WORD_CSS = ".wb-word, .wb-word * { font-size: 3.2rem !important; line-height: 1.25 !important; font-weight: 600 !important; }"


def label_config(dimension: str, points: list[float], labels: dict[str, str] | None, *, key: str | None = None) -> str:
    """The rating interface: a small line saying what to do, the word in large type, the points as buttons.

    key: the project's workbench key, kept in an XML comment (Label Studio keeps the config as written and
    shows it only to project managers), so neither the project's title nor its description carries it.
    """
    labels = labels or {}
    keys, unknown_key = hotkeys(points)
    lo, hi = point_label(points[0]), point_label(points[-1])
    head = f"Rate the {dimension} of the word from {lo} to {hi}"
    if keys[0]:
        head += f": press {keys[0]}-{keys[-1]}, or {unknown_key} if you don't know the word"
    lines = ["<View>"]
    if key:
        lines.append("  " + KEY_COMMENT.format(key=key.replace("-", "%2D")))  # a comment cannot hold "--"
    lines += [
        f"  <Style>{WORD_CSS}</Style>",
        f'  <Header value={quoteattr(head)} size="6"/>',
        '  <View className="wb-word" style="text-align: center; padding: 1.5rem 0 2rem;">',
        f'    <Text name="{TO_NAME}" value="$word"/>',
        "  </View>",
        f'  <Choices name="{FROM_NAME}" toName="{TO_NAME}" choice="single-radio" showInline="true" required="true">',
    ]
    for point, key_ in zip(points, keys, strict=True):
        name = point_label(point)
        lines.append(f"    <Choice value={quoteattr(point_text(point, labels))} alias={quoteattr(name)}"
                     + (f' hotkey="{key_}"' if key_ else "") + "/>")  # fmt: skip
    lines.append(f'    <Choice value={quoteattr(UNKNOWN_LABEL)} alias="{UNKNOWN}" hotkey="{unknown_key}"/>')
    lines += ["  </Choices>", "</View>"]
    return "\n".join(lines)


def _paragraphs(text: str) -> str:
    paragraphs = [p.strip() for p in text.replace("\r\n", "\n").split("\n\n") if p.strip()]
    return "".join("<p>" + html.escape(p).replace("\n", "<br>") + "</p>" for p in paragraphs)


def instructions_html(text: str | None) -> str:
    """The dimension's instructions (the text the LLM raters get) as the project's HTML instructions."""
    if not text:
        return ""
    return _paragraphs(text)


def annotator_instructions(
    text: str | None,
    *,
    points: list[float],
    labels: dict[str, str] | None,
    title: str | None = None,
    information: str | None = None,
    consent: str | None = None,
    completion_code: str | None = None,
    completion_url: str | None = None,
) -> str:
    """What annotators read before the first word (and whenever they open the instructions): the study's title,
    its information and consent text, the dimension's instructions, the scale with the very labels of the
    buttons, and the completion code or link that gets them paid."""
    out = []
    if title:
        out.append(f"<h2>{html.escape(title)}</h2>")
    if information:
        out.append(_paragraphs(information))
    if consent:
        out.append("<h3>Consent</h3>" + _paragraphs(consent))
        out.append("<p><b>By rating the words that follow you agree to take part.</b></p>")
    if text:
        out.append("<h3>What to do</h3>" + _paragraphs(text))
    keys, unknown_key = hotkeys(points)
    legend = "".join(
        f"<li>{html.escape(point_text(p, labels))}" + (f", key {k}" if k else "") + "</li>" for p, k in zip(points, keys, strict=True)
    )
    legend += f"<li>{html.escape(UNKNOWN_LABEL)}, key {unknown_key}</li>"
    out.append(f"<p>The buttons:</p><ul>{legend}</ul>")
    if completion_code or completion_url:
        parts = []
        if completion_code:
            parts.append(f"your completion code is <b>{html.escape(completion_code)}</b>")
        if completion_url:
            parts.append(
                f'then return to the study panel through <a href="{html.escape(completion_url, quote=True)}">{html.escape(completion_url)}</a>'
            )
        said = "; ".join(parts)
        out.append("<h3>When you have rated every word of the list</h3><p>" + said[0].upper() + said[1:] + ".</p>")
    return "".join(out)


_POINT_IN_TEXT = re.compile(r"(?<![\w.])(\d+(?:\.\d+)?)\s*\(([^()]+)\)")


def label_mismatches(text: str | None, points: list[float], labels: dict[str, str] | None) -> list[str]:
    """Scale points the instructions name with another label than their button, e.g. "1 (very unfamiliar)" where the
    button says "1 (unfamiliar)": one line each."""
    if not text:
        return []
    out = []
    for number, said in _POINT_IN_TEXT.findall(text):
        value = float(number)
        if not any(abs(value - p) < 1e-9 for p in points):
            continue
        button = point_text(value, labels)
        if button != f"{point_label(value)} ({said.strip()})":
            out.append(f"the instructions say {number} ({said.strip()}) where the button says {button}")
    return out


def choice_value(result: list[dict], points: list[float]) -> tuple[float | None, bool, str | None]:
    """(value, unknown, problem) read from an annotation's result.

    A value off the scale (a project edited by hand, a hand-made annotation) is a problem, never a rating.
    """
    chosen = [r for r in result or [] if r.get("from_name") == FROM_NAME and r.get("type") == "choices"]
    if not chosen:
        return None, False, "no rating in the annotation"
    choices = (chosen[-1].get("value") or {}).get("choices") or []
    if len(choices) != 1:
        return None, False, f"{len(choices)} choices in the annotation, expected one"
    raw = str(choices[0]).strip()
    if raw in (UNKNOWN, UNKNOWN_LABEL):
        return None, True, None
    head = raw.split(" (", 1)[0]
    try:
        value = float(head)
    except ValueError:
        return None, False, f"value {raw!r} is not on the scale"
    if not any(abs(value - p) < 1e-9 for p in points):
        return None, False, f"value {raw!r} is not on the scale {point_label(points[0])}-{point_label(points[-1])}"
    return value, False, None


def prediction(value: float, model_version: str) -> dict:
    """A pre-annotation: an LLM rater's rating, rounded to the nearest point, carrying the rater's name."""
    return {
        "model_version": model_version,
        "result": [{"from_name": FROM_NAME, "to_name": TO_NAME, "type": "choices", "value": {"choices": [point_label(value)]}}],
    }


def settings_hash(settings: dict) -> str:
    return hashlib.sha256(json.dumps(settings, sort_keys=True).encode()).hexdigest()
