"""A rater's full configuration, resolved against the store, and its identity.

The identity of a rater is the hash of everything that decides its ratings:
backend, model (and for a local model the weights' fingerprint), server, the
filled prompt with its few-shot examples, read-out and generation parameters,
the scale; for a baseline, its training items and their gold values. The same
identity resumes; any change makes a new rater, and the old one is kept under
``NAME@HASH`` with its ratings.

How a job runs (concurrency, timeouts, retries, batch sizes) and where the key
comes from are not part of the identity.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from workbench.errors import WorkbenchError, did_you_mean
from workbench.raters.backend import RaterOptions, ResolvedRater, get_backend
from workbench.scale import scale_points
from workbench.store.models import Dimension, Rater


def _dimension(session: Session, name: str, declared: list[str]) -> Dimension:
    dim = session.scalar(select(Dimension).where(Dimension.name == name))
    if dim is None:
        if name in declared:  # the right name, not applied yet: no "did you mean" of the name itself
            raise WorkbenchError(f"dimension {name!r} is declared in the study but not in the store yet: run `workbench apply` first.")
        raise WorkbenchError(
            f"dimension {name!r} is not in the store: declare it in the study and run `workbench apply`." + did_you_mean(name, declared)
        )
    if dim.scale_min is None or dim.scale_max is None:
        raise WorkbenchError(f"dimension {name!r} has no scale: give it one in the study (scale: [1, 7]).")
    return dim


def resolve_rater(session: Session, name: str, spec: RaterOptions, *, dimensions: list[str], base_dir: Path) -> ResolvedRater:
    """Resolve a rater against the store: dimension, scale, then what its backend adds (prompt, training data).

    The identity starts from the backend, the dimension, the scale and every
    option that decides the ratings (not the run fields, not the options that
    enter through what they produce); the backend completes it.
    """
    backend = get_backend(spec.backend)
    dim_name = spec.dimension
    if dim_name is None:
        if len(dimensions) != 1:
            raise WorkbenchError(f"raters.{name}: the study has {len(dimensions)} dimensions: say which one with dimension:.")
        dim_name = dimensions[0]
    dim = _dimension(session, dim_name, dimensions)
    step = dim.scale_step or 1.0
    points = scale_points(dim.scale_min, dim.scale_max, step)
    identity: dict[str, Any] = {
        "backend": spec.backend,
        "dimension": dim_name,
        "scale": [dim.scale_min, dim.scale_max, step],
    }
    leave_out = set(spec.run_fields) | set(spec.derived_fields) | {"backend", "dimension"}
    identity.update(spec.model_dump(exclude=leave_out, exclude_none=True))
    fingerprint = backend.weights_fingerprint(spec)
    if fingerprint is not None:
        identity["weights"] = fingerprint
    rater = ResolvedRater(name, spec, dim_name, tuple(points), identity)
    return backend.resolve(session, rater, base_dir=base_dir)


def rater_row(session: Session, resolved: ResolvedRater) -> Rater:
    """The store's rater for this identity: the existing one (resume), or a new one.

    When the name is taken by a different configuration, that rater is renamed
    NAME@HASH8 (its ratings kept) and a new one takes the name.
    """
    digest = resolved.hash
    current = session.scalar(select(Rater).where(Rater.name == resolved.name))
    if current is not None:
        if current.config_hash == digest:
            return current
        if current.kind in ("norm", "human"):
            raise WorkbenchError(f"rater name {resolved.name!r} is taken by a {current.kind} rater: give the rater another name.")
        current.name = f"{resolved.name}@{(current.config_hash or 'unknown')[:8]}"
        session.flush()
    archived = session.scalar(select(Rater).where(Rater.config_hash == digest, Rater.name.like(f"{resolved.name}@%")))
    if archived is not None:  # back to an earlier configuration: it resumes under its name
        archived.name = resolved.name
        session.flush()
        return archived
    rater = Rater(name=resolved.name, kind=resolved.kind, config=resolved.identity, config_hash=digest)
    session.add(rater)
    session.flush()
    return rater
