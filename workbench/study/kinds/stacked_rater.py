"""Raters that rate from other raters' ratings (a stack): run after the other raters and the fine-tunes."""

from __future__ import annotations

from workbench.study.kind import register_kind
from workbench.study.kinds.rater import RaterKind


@register_kind("stacked rater")
class StackedRaterKind(RaterKind):
    label = "rater"
    needs = ("rater", "finetune")
    stacked = True
