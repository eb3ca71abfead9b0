"""Prompt templates: fill in the dimension, its scale and few-shot examples; leave {item} per request.

A template names its fields in braces: ``{item}`` (required), ``{examples}``,
``{dimension}``, ``{scale_min}``, ``{scale_max}``, ``{labels}`` and
``{instructions}``. Other braces (a JSON example such as ``{"rating": 5}``)
are left alone; an unknown ``{name}`` is an error, since it is almost always
a typo.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from workbench.errors import WorkbenchError
from workbench.scale import point_label

FIELDS = ("item", "examples", "dimension", "scale_min", "scale_max", "labels", "instructions")
_FIELD = re.compile(r"\{([a-z_]+)\}")

DEFAULT_TEMPLATE = (
    "{instructions}"
    "Rate the {dimension} of the word on a scale from {scale_min} to {scale_max}{labels}. "
    "Answer with a single number.\n\n"
    "{examples}"
    'Word: "{item}"\nRating:'
)


@dataclass(frozen=True)
class Prompt:
    """A template with everything but the item filled in.

    text: the filled template; ``{item}`` marks where each item goes.
    """

    text: str

    def render(self, item: str) -> str:
        return self.text.replace("{item}", item)

    def split(self, item: str) -> tuple[str, str]:
        """(prefix, suffix): the prefix is shared by every item (everything
        before the line holding the item); the suffix is that line onwards.
        A local model computes the prefix once and reuses it."""
        at = self.text.index("{item}")
        line_start = self.text.rfind("\n", 0, at) + 1
        return self.text[:line_start], self.text[line_start:].replace("{item}", item)


def _labels_text(labels: dict[str, str] | None) -> str:
    if not labels:
        return ""
    ordered = sorted(labels.items(), key=lambda kv: float(kv[0]) if _is_num(kv[0]) else 0.0)
    return " (" + ", ".join(f"{point_label(float(k)) if _is_num(k) else k} = {v}" for k, v in ordered) + ")"


def _is_num(s: str) -> bool:
    try:
        float(s)
    except ValueError:
        return False
    return True


def fill_template(
    template: str,
    *,
    where: str,
    dimension: str,
    scale: tuple[float, float],
    labels: dict[str, str] | None = None,
    instructions: str | None = None,
    examples: str = "",
) -> Prompt:
    """Fill every field but {item}. where names the template in errors (a file or a study key)."""
    unknown = sorted({m.group(1) for m in _FIELD.finditer(template)} - set(FIELDS))
    if unknown:
        raise WorkbenchError(
            f"{where}: unknown field {{{unknown[0]}}} in the prompt; the fields are " + ", ".join("{" + f + "}" for f in FIELDS) + "."
        )
    if "{item}" not in template:
        raise WorkbenchError(f"{where}: the prompt must contain {{item}}, where the word goes.")
    if template.count("{item}") > 1:
        raise WorkbenchError(f"{where}: the prompt contains {{item}} more than once; give it once.")
    values = {
        "examples": examples,
        "dimension": dimension,
        "scale_min": point_label(scale[0]),
        "scale_max": point_label(scale[1]),
        "labels": _labels_text(labels),
        "instructions": (instructions.strip() + "\n\n") if instructions else "",
    }
    text = _FIELD.sub(lambda m: values.get(m.group(1), m.group(0)), template)
    return Prompt(text)


def format_examples(examples: list[tuple[str, float]], fmt: str, *, round_to: float | None) -> str:
    """The few-shot block: one formatted example per (item, gold value), a blank line after each."""
    blocks = []
    for item, value in examples:
        if round_to:
            value = round(value / round_to) * round_to
        blocks.append(fmt.replace("{item}", item).replace("{value}", point_label(value) if round_to else f"{value:.2f}"))
    return "".join(b + "\n\n" for b in blocks)
