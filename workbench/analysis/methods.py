"""Methods: what a reviewer asks of a norming study, generated from the store alone.

The study (as `workbench apply` recorded it), the date and the workbench
version; each dimension with its scale, labels and instructions; each dataset
with its citation and licence; each LLM or model rater with its model, model
version, weights, read-out, prompt (filled in for one word it rated), few-shot
source and training items; each campaign's design (k per word, lists,
controls, exclusions) and what it gathered.

Nothing here reads the study file: a store handed to a colleague gives the
same section.
"""

from __future__ import annotations

import datetime as dt
import json
import os
from collections.abc import Iterable
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from workbench.analysis.report_model import CampaignMethod, DatasetMethod, DimensionMethod, Methods, RaterMethod
from workbench.store.meta import study_info
from workbench.store.models import (
    Call,
    Campaign,
    CampaignAnnotation,
    CampaignList,
    CampaignTask,
    Dataset,
    Dimension,
    Item,
    Job,
    Rater,
    Rating,
)

CITE = (
    "Cite the workbench with its version (see CITATION.cff in its repository), and the datasets, models and "
    "methods listed here: Conde et al. (2025) for the LLM norming procedure."
)
# shown on their own lines; the rest of a rater's configuration goes to `options`
_SHOWN = ("backend", "dimension", "model", "weights", "readout", "prompt", "trained_on", "train", "gold", "scale")


def report_date() -> str:
    """Today (UTC) as YYYY-MM-DD, or the date of SOURCE_DATE_EPOCH when it is set (reproducible reports)."""
    epoch = os.environ.get("SOURCE_DATE_EPOCH", "").strip()
    if epoch.isdigit():
        return dt.datetime.fromtimestamp(int(epoch), dt.UTC).date().isoformat()
    return dt.datetime.now(dt.UTC).date().isoformat()


def _iso(value: dt.datetime | None) -> str | None:
    if value is None:
        return None
    if value.tzinfo is None:
        value = value.replace(tzinfo=dt.UTC)
    return value.astimezone(dt.UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


def collect_methods(session: Session, *, dimensions: Iterable[str], raters: Iterable[str], gold: Iterable[str]) -> Methods:
    """The methods section for a report over these dimensions, raters and gold datasets."""
    from workbench import __version__

    info = study_info(session) or {}
    dims = list(dict.fromkeys(dimensions))
    gold_names = set(gold)
    campaigns = [campaign_method(session, c) for c in session.scalars(select(Campaign).order_by(Campaign.name))]
    aggregates = {c.dataset_id for c in session.scalars(select(Campaign)) if c.dataset_id is not None}
    return Methods(
        study=info.get("name"),
        title=info.get("title"),
        date=report_date(),
        workbench=__version__,
        cite=CITE,
        dimensions=[
            dimension_method(d) for d in session.scalars(select(Dimension).where(Dimension.name.in_(dims)).order_by(Dimension.name))
        ],
        datasets=[dataset_method(session, ds, gold_names, aggregates) for ds in session.scalars(select(Dataset).order_by(Dataset.name))],
        raters=[m for m in (rater_method(session, name) for name in dict.fromkeys(raters)) if m is not None],
        campaigns=campaigns,
    )


def dimension_method(dim: Dimension) -> DimensionMethod:
    return DimensionMethod(
        name=dim.name, scale=(dim.scale_min, dim.scale_max), step=dim.scale_step,
        labels={str(k): str(v) for k, v in (dim.labels or {}).items()}, instructions=dim.instructions,
    )  # fmt: skip


def dataset_method(session: Session, ds: Dataset, gold: set[str], aggregates: set[int]) -> DatasetMethod:
    q = select(func.count(func.distinct(Rating.item_id))).join(Rater, Rater.id == Rating.rater_id).where(Rater.dataset_id == ds.id)
    dims = select(Dimension.name).join(Rating, Rating.dimension_id == Dimension.id).join(Rater, Rater.id == Rating.rater_id)
    dims = dims.where(Rater.dataset_id == ds.id).distinct().order_by(Dimension.name)
    role = "gold" if ds.name in gold else "campaign aggregate" if ds.id in aggregates else "not used as gold in this report"
    return DatasetMethod(
        name=ds.name, citation=ds.citation, licence=ds.licence, url=ds.origin_url, file=ds.origin_file, checksum=ds.checksum,
        preset=ds.preset, language=ds.language, imported=_iso(ds.imported_at), items=int(session.scalar(q) or 0),
        dimensions=list(session.scalars(dims)), role=role,
    )  # fmt: skip


def latest_job_config(session: Session, rater_id: int) -> dict[str, Any]:
    """The configuration the rater's latest rating job recorded (its declared options, its filled prompt)."""
    q = select(Job.config).where(Job.rater_id == rater_id, Job.kind.like("rate:%")).order_by(Job.started_at.desc(), Job.id.desc())
    return session.scalars(q.limit(1)).first() or {}


def model_version(session: Session, rater_id: int) -> str | None:
    """The model the server said answered (the ``model`` of the latest successful call's response), if recorded."""
    q = (
        select(Call.response)
        .join(Job, Job.id == Call.job_id)
        .where(Job.rater_id == rater_id, Call.status == "ok", Call.response.is_not(None))
        .order_by(Call.id.desc())
        .limit(1)
    )
    text = session.scalars(q).first()
    if not text:
        return None
    try:
        body = json.loads(text)
    except ValueError:
        return None
    model = body.get("model") if isinstance(body, dict) else None
    return str(model) if model else None


def few_shot_text(options: dict[str, Any]) -> str | None:
    fs = options.get("few_shot")
    if not isinstance(fs, dict):
        return None
    return f"{fs.get('n', '?')} examples drawn from {fs.get('items')} (seed {fs.get('seed', 0)}), with their {fs.get('gold')} values as answers"


def trained_text(config: dict[str, Any]) -> str | None:
    info = config.get("trained_on")
    if isinstance(info, dict) and info.get("items"):
        n = f"{info['n']:,} items of " if info.get("n") else ""
        gold = f", to predict {info['gold']}" if info.get("gold") else ""
        return f"{n}{info['items']}{gold}"
    if config.get("train"):
        return f"{config['train']}" + (f", to predict {config['gold']}" if config.get("gold") else "")
    return None


def example_word(session: Session, rater_id: int) -> str | None:
    """The first word (in sort order) the rater rated: the word its prompt is shown for."""
    q = select(func.min(Item.text)).join(Rating, Rating.item_id == Item.id).where(Rating.rater_id == rater_id)
    return session.scalar(q)


def render_prompt(template: str | None, word: str | None) -> str | None:
    """A rater's filled prompt with the word in place of {item}."""
    if not template:
        return None
    return template.replace("{item}", word) if word is not None else template


def rater_method(session: Session, name: str, *, word: str | None = None) -> RaterMethod | None:
    """One rater's configuration as the store holds it (None for an unknown name)."""
    rater = session.scalar(select(Rater).where(Rater.name == name))
    if rater is None:
        return None
    config = dict(rater.config or {})
    job = latest_job_config(session, rater.id)
    declared = job.get("options") if isinstance(job.get("options"), dict) else {}
    prompt = config.get("prompt") or job.get("prompt")
    word = word or example_word(session, rater.id)
    jobs = select(func.count(Job.id), func.min(Job.started_at), func.max(Job.started_at)).where(Job.rater_id == rater.id)
    n_jobs, first, last = session.execute(jobs).one()
    calls = select(func.count(Call.id)).join(Job, Job.id == Call.job_id).where(Job.rater_id == rater.id)
    rated = select(func.count(Rating.id)).where(Rating.rater_id == rater.id, Rating.value.is_not(None))
    dimension = config.get("dimension")
    if dimension is None:
        q = select(Dimension.name).join(Rating, Rating.dimension_id == Dimension.id).where(Rating.rater_id == rater.id).limit(1)
        dimension = session.scalar(q)
    options = {k: json.dumps(v, ensure_ascii=False, sort_keys=True) for k, v in config.items() if k not in _SHOWN}
    return RaterMethod(
        name=rater.name, kind=rater.kind, backend=config.get("backend"), dimension=dimension,
        model=None if config.get("model") is None else str(config["model"]), model_version=model_version(session, rater.id),
        weights=None if config.get("weights") is None else str(config["weights"]), readout=config.get("readout"),
        options=options, prompt=render_prompt(prompt, word), example_word=word if prompt else None,
        few_shot=few_shot_text(declared), trained_on=trained_text(config), rated=int(session.scalar(rated) or 0),
        jobs=int(n_jobs or 0), calls=int(session.scalar(calls) or 0), first_run=_iso(first), last_run=_iso(last),
    )  # fmt: skip


def _controls_text(c: dict[str, Any] | None) -> str | None:
    if not c:
        return None
    parts = []
    if c.get("per_list") and c.get("gold"):
        tol = (
            f", failed when further than {c['tolerance']:g} from gold"
            if c.get("tolerance")
            else ", failed when further than a third of the scale from gold"
        )
        parts.append(f"{c['per_list']} known words per list from {c['gold']} (half from each end of the scale){tol}")
    if c.get("nonwords_per_list") and c.get("nonwords"):
        parts.append(f"{c['nonwords_per_list']} nonwords per list (expected answer: I don't know this word)")
    return "; ".join(parts) or None


def _exclusions_text(e: dict[str, Any] | None) -> str | None:
    if not e:
        return None
    parts = []
    if e.get("max_failed_controls") is not None:
        parts.append(f"more than {e['max_failed_controls']:.0%} of control items failed")
    if e.get("min_correlation") is not None:
        parts.append(f"correlation with the mean of the others below {e['min_correlation']:g}")
    if e.get("min_median_seconds") is not None:
        parts.append(f"median time per word below {e['min_median_seconds']:g} s")
    if not parts:
        return None
    return "an annotator is excluded for " + ", or ".join(parts) + f" (annotators with at least {e.get('min_ratings', 10)} ratings)"


def campaign_method(session: Session, camp: Campaign) -> CampaignMethod:
    cfg = camp.config or {}
    dim = session.get(Dimension, camp.dimension_id)
    n_items = select(func.count(func.distinct(CampaignTask.item_id))).where(
        CampaignTask.campaign_id == camp.id, CampaignTask.role == "item", CampaignTask.deleted.is_(False)
    )
    lists = select(func.count(CampaignList.id)).where(CampaignList.campaign_id == camp.id)
    anns = select(func.count(CampaignAnnotation.id)).where(CampaignAnnotation.campaign_id == camp.id)
    who = select(func.count(func.distinct(CampaignAnnotation.annotator))).where(
        CampaignAnnotation.campaign_id == camp.id, CampaignAnnotation.status == "ok"
    )
    humans = [r.config or {} for r in session.scalars(select(Rater).where(Rater.kind == "human"))]
    excluded = sum(1 for c in humans if c.get("campaign") == camp.name and c.get("excluded"))
    return CampaignMethod(
        name=camp.name, dimension=dim.name if dim else None, items=cfg.get("items"), n_items=int(session.scalar(n_items) or 0),
        raters_per_item=cfg.get("raters_per_item"), list_size=cfg.get("list_size"), lists=int(session.scalar(lists) or 0),
        controls=_controls_text(cfg.get("controls")), exclusions=_exclusions_text(cfg.get("exclude")),
        pre_annotations=cfg.get("pre_annotations"), annotators=int(session.scalar(who) or 0), excluded=excluded,
        annotations=int(session.scalar(anns) or 0), pushed=_iso(camp.pushed_at), pulled=_iso(camp.pulled_at),
    )  # fmt: skip
