"""`workbench rater show`: a rater's whole configuration, and its prompt filled in for one word.

A rater the study declares is resolved against the store as a run would
resolve it (so the prompt is the one the next run sends, few-shot examples
drawn); a rater only the store knows (an older configuration ``NAME@HASH``,
an imported model) is shown as the store holds it. Either way the store's
side follows: ratings, jobs, calls, the model version the server reported.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from workbench.analysis.methods import rater_method, render_prompt
from workbench.errors import WorkbenchError, did_you_mean
from workbench.store.itemsets import item_texts, resolve_items
from workbench.store.models import Rater
from workbench.study.load import LoadedStudy

EXAMPLE_WORD = "house"  # when the rater has no items to take one from


def _first_word(session: Session, items: str | None) -> str | None:
    if not items:
        return None
    try:
        ids = resolve_items(session, items)
    except WorkbenchError:
        return None
    return min(item_texts(session, ids[:1000]).values(), default=None)


def rater_details(session: Session, loaded: LoadedStudy | None, name: str, *, word: str | None = None) -> dict[str, Any]:
    """Everything about one rater: declared options, identity, prompt for a word, and what the store holds of it."""
    declared = loaded is not None and name in loaded.study.raters
    stored = session.scalar(select(Rater).where(Rater.name == name))
    if not declared and stored is None:
        known = sorted(loaded.study.raters) if loaded is not None else []
        known += [
            n for n in session.scalars(select(Rater.name).where(Rater.kind.in_(("llm", "model"))).order_by(Rater.name)) if n not in known
        ]
        listed = ", ".join(known) or "none"
        raise WorkbenchError(f"no rater named {name!r} in the study or the store (raters: {listed}).{did_you_mean(name, known)}")
    out: dict[str, Any] = {"name": name, "declared": declared}
    if declared:
        from workbench.study.rate import resolve

        assert loaded is not None
        resolved = resolve(session, loaded, name)
        spec = resolved.spec
        word = word or _first_word(session, spec.items) or EXAMPLE_WORD
        out |= {
            "backend": spec.backend,
            "kind": resolved.kind,
            "dimension": resolved.dimension,
            "scale": list(resolved.scale),
            "points": [float(p) for p in resolved.points],
            "model": spec.model_name,
            "items": spec.items,
            "options": spec.model_dump(mode="json", exclude_none=True),
            "identity": resolved.identity,
            "hash": resolved.hash,
            "system": resolved.system,
            "word": word,
            "prompt": resolved.prompt.render(word) if resolved.prompt is not None else None,
        }
        out["stored_as"] = None
        if stored is not None and stored.config_hash == resolved.hash:
            out["stored_as"] = stored.name
        else:
            same = session.scalar(select(Rater).where(Rater.config_hash == resolved.hash))
            out["stored_as"] = same.name if same is not None else None
            if stored is not None:
                out["note"] = (f"the store's {name!r} was rated with another configuration: the next run makes a new rater "
                               f"and keeps the old one as {name}@{(stored.config_hash or 'unknown')[:8]}")  # fmt: skip
        stored = session.scalar(select(Rater).where(Rater.name == out["stored_as"])) if out["stored_as"] else None
    if stored is not None:
        m = rater_method(session, stored.name, word=word)
        assert m is not None
        if not declared:
            config = stored.config or {}
            word = word or m.example_word or EXAMPLE_WORD
            out |= {"backend": m.backend, "kind": m.kind, "dimension": m.dimension, "model": m.model, "identity": config,
                    "hash": stored.config_hash, "word": word,
                    "prompt": render_prompt(config.get("prompt"), word)}  # fmt: skip
        out["store"] = {
            "name": stored.name, "ratings": m.rated, "jobs": m.jobs, "calls": m.calls, "first_run": m.first_run,
            "last_run": m.last_run, "model_version": m.model_version, "weights": m.weights, "few_shot": m.few_shot,
            "trained_on": m.trained_on,
        }  # fmt: skip
    else:
        out["store"] = None
    return out


def describe_rater(details: dict[str, Any]) -> list[str]:
    """The lines `workbench rater show` prints."""
    import json

    def show(value: Any) -> str:
        return value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)

    lines = [f"{details['name']}: {details.get('kind') or '?'} rater, backend {details.get('backend') or '?'}"
             + (f", model {details['model']}" if details.get("model") else "")
             + ("" if details["declared"] else " (in the store only; the study does not declare it)")]  # fmt: skip
    for key in ("dimension", "scale", "items", "hash"):
        if details.get(key) is not None:
            lines.append(f"  {key}: {show(details[key])}")
    if details.get("options"):
        lines.append("  declared options:")
        lines += [f"    {k}: {show(v)}" for k, v in details["options"].items()]
    if details.get("identity"):
        lines.append("  identity (what decides its ratings):")
        lines += [f"    {k}: {show(v)}" for k, v in details["identity"].items() if k != "prompt"]
    store = details.get("store")
    if store:
        lines.append(f"  in the store as {store['name']}: {store['ratings']} ratings, {store['jobs']} jobs, {store['calls']} calls")
        for key in ("model_version", "weights", "few_shot", "trained_on", "first_run", "last_run"):
            if store.get(key):
                lines.append(f"    {key.replace('_', ' ')}: {store[key]}")
    else:
        lines.append("  not in the store yet: `workbench rate " + details["name"] + "` makes it")
    if details.get("note"):
        lines.append(f"  note: {details['note']}")
    if details.get("system"):
        lines += ["", "System prompt:", *("  " + line for line in details["system"].splitlines())]
    if details.get("prompt") is not None:
        lines += ["", f"Prompt for {details['word']!r}:", *("  " + line for line in details["prompt"].splitlines())]
    else:
        lines += ["", "No prompt: this rater is not a language model."]
    return lines
