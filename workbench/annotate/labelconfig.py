"""The rating interface, generated from the dimension: one word, the scale's points as choices with
keys 1..N (one key press per word), and "I don't know this word" as the Glasgow procedure had.

A choice's ``alias`` is what the annotation stores: the point's number, or ``unknown``.
"""

from __future__ import annotations

import hashlib
import html
import json
from xml.sax.saxutils import quoteattr

from workbench.raters.readout import point_label

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


def label_config(dimension: str, points: list[float], labels: dict[str, str] | None) -> str:
    labels = labels or {}
    keys, unknown_key = hotkeys(points)
    lo, hi = point_label(points[0]), point_label(points[-1])
    head = f"Rate the {dimension} of the word from {lo} to {hi}"
    if keys[0]:
        head += f": press {keys[0]}-{keys[-1]}, or {unknown_key} if you don't know the word"
    lines = [
        "<View>",
        f"  <Header value={quoteattr(head)}/>",
        f'  <Text name="{TO_NAME}" value="$word"/>',
        f'  <Choices name="{FROM_NAME}" toName="{TO_NAME}" choice="single-radio" showInline="true" required="true">',
    ]
    for point, key in zip(points, keys, strict=True):
        name = point_label(point)
        label = labels.get(name) or labels.get(str(point)) or labels.get(f"{point:g}")
        shown = f"{name} ({label})" if label else name
        lines.append(f"    <Choice value={quoteattr(shown)} alias={quoteattr(name)}" + (f' hotkey="{key}"' if key else "") + "/>")
    lines.append(f'    <Choice value={quoteattr(UNKNOWN_LABEL)} alias="{UNKNOWN}" hotkey="{unknown_key}"/>')
    lines += ["  </Choices>", "</View>"]
    return "\n".join(lines)


def instructions_html(text: str | None) -> str:
    """The dimension's instructions (the text the LLM raters get) as the project's HTML instructions."""
    if not text:
        return ""
    paragraphs = [p.strip() for p in text.replace("\r\n", "\n").split("\n\n") if p.strip()]
    return "".join("<p>" + html.escape(p).replace("\n", "<br>") + "</p>" for p in paragraphs)


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
