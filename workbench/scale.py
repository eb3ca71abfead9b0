"""Rating scales: the points of a scale and their canonical text.

Below both raters/ (the read-outs match a model's answer to a point) and
annotate/ (Label Studio's buttons are the points): one definition of what a
scale's points are and how each is written.
"""

from __future__ import annotations

import math

import numpy as np

from workbench.errors import WorkbenchError

Number = int | float


def is_number(x: object) -> bool:
    """A real number (a Python or numpy int or float, not a bool)."""
    return isinstance(x, int | float | np.integer | np.floating) and not isinstance(x, bool | np.bool_)


def point_label(point: Number) -> str:
    """The canonical text of a scale point: ``5 -> "5"``, ``5.0 -> "5"``, ``2.5 -> "2.5"``."""
    if not is_number(point) or not math.isfinite(float(point)):
        raise WorkbenchError(f"scale point {point!r} is not a finite number")
    x = float(point)
    if x.is_integer():
        return str(int(x))
    return format(x, ".12g")


def scale_points(min: Number, max: Number, step: Number = 1) -> tuple[Number, ...]:
    """The points of a rating scale from min to max inclusive, every step.

    Integer arguments give integer points (``scale_points(1, 7) == (1, ..., 7)``,
    ``scale_points(100, 700, 100) == (100, 200, ..., 700)``); a fractional
    argument gives floats rounded to 12 significant digits.
    """
    for name, v in (("min", min), ("max", max), ("step", step)):
        if not is_number(v) or not math.isfinite(float(v)):
            raise WorkbenchError(f"scale {name} must be a finite number, got {v!r}")
    if step <= 0:
        raise WorkbenchError(f"scale step must be positive, got {step!r}")
    if max < min:
        raise WorkbenchError(f"scale max ({max!r}) is below its min ({min!r})")
    if all(float(v).is_integer() for v in (min, max, step)):
        lo, hi, st = int(min), int(max), int(step)
        if (hi - lo) % st:
            raise WorkbenchError(f"scale {lo}-{hi} cannot be divided in steps of {st}")
        return tuple(range(lo, hi + 1, st))
    n = round((float(max) - float(min)) / float(step))
    if abs(float(min) + n * float(step) - float(max)) > 1e-9 * (1 + abs(float(max))):
        raise WorkbenchError(f"scale {min!r}-{max!r} cannot be divided in steps of {step!r}")
    return tuple(float(format(float(min) + i * float(step), ".12g")) for i in range(n + 1))
