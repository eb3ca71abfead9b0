"""A campaign of the study file resolved against the store: dimension, scale, instructions, items, controls."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from sqlalchemy import select
from sqlalchemy.orm import Session

from workbench.errors import WorkbenchError
from workbench.files import read_text_or_file
from workbench.scale import scale_points
from workbench.store.itemsets import gold_values, item_texts, resolve_items
from workbench.store.models import Campaign, Dimension
from workbench.study.load import LoadedStudy
from workbench.study.models import CampaignSpec


@dataclass
class ResolvedCampaign:
    name: str
    study: str
    spec: CampaignSpec
    base_dir: Path
    dimension: Dimension
    points: list[float]
    instructions: str | None
    items: dict[int, str]  # item id -> text, the words to rate
    known_controls: list[tuple[int, str, float]] = field(default_factory=list)  # (item id, text, gold value)
    nonwords: list[str] = field(default_factory=list)
    # what annotators read before the first word: the study file's title, information and consent text
    title: str | None = None
    information: str | None = None
    consent: str | None = None

    @property
    def dataset_name(self) -> str:
        return self.spec.dataset or self.name

    @property
    def tolerance(self) -> float:
        c = self.spec.controls
        if c is not None and c.tolerance is not None:
            return c.tolerance
        return (self.points[-1] - self.points[0]) / 3


def campaign_spec(loaded: LoadedStudy, name: str) -> CampaignSpec:
    spec = loaded.study.campaigns.get(name)
    if spec is None:
        from workbench.errors import did_you_mean

        known = sorted(loaded.study.campaigns)
        hint = did_you_mean(name, known) if known else ""
        listed = f" The study declares: {', '.join(known)}." if known else " The study declares none under `campaigns:`."
        raise WorkbenchError(f"{loaded.path}: no campaign named {name!r}.{hint}{listed}")
    return spec


def resolve_campaign(session: Session, loaded: LoadedStudy, name: str) -> ResolvedCampaign:
    spec = campaign_spec(loaded, name)
    dim_name = spec.dimension
    if dim_name is None:
        dims = list(loaded.study.dimensions)
        if len(dims) != 1:
            raise WorkbenchError(f"campaigns.{name}: the study has {len(dims)} dimensions: say which one with dimension:.")
        dim_name = dims[0]
    dim = session.scalar(select(Dimension).where(Dimension.name == dim_name))
    if dim is None:
        raise WorkbenchError(f"campaigns.{name}: dimension {dim_name!r} is not in the store: run `workbench apply` first.")
    if dim.scale_min is None or dim.scale_max is None:
        raise WorkbenchError(f"campaigns.{name}: dimension {dim_name!r} has no scale.")
    points = [float(p) for p in scale_points(dim.scale_min, dim.scale_max, dim.scale_step or 1)]
    if len(points) > 20:
        raise WorkbenchError(f"campaigns.{name}: the scale of {dim_name!r} has {len(points)} points; a rating interface takes at most 20.")
    ids = resolve_items(session, spec.items)
    if not ids:
        raise WorkbenchError(f"campaigns.{name}: {spec.items!r} has no items.")
    items = item_texts(session, ids)
    known: list[tuple[int, str, float]] = []
    nonwords: list[str] = []
    c = spec.controls
    if c is not None:
        if c.per_list and c.gold:
            gold = {i: v for i, v in gold_values(session, c.gold, dim_name).items() if i not in items}
            if len(gold) < c.per_list:
                raise WorkbenchError(
                    f"campaigns.{name}.controls: {c.gold!r} has {len(gold)} rated words outside the campaign's items; need {c.per_list}."
                )
            ranked = sorted(gold, key=lambda i: (gold[i], i))
            low, high = (c.per_list + 1) // 2, c.per_list // 2
            chosen = ranked[:low] + (ranked[-high:] if high else [])
            texts = item_texts(session, chosen)
            known = [(i, texts[i], gold[i]) for i in chosen]
        nonwords = _nonwords(c.nonwords, loaded.base_dir, name)
        if c.nonwords_per_list and len(nonwords) < c.nonwords_per_list:
            raise WorkbenchError(f"campaigns.{name}.controls: {len(nonwords)} nonwords given; nonwords_per_list is {c.nonwords_per_list}.")
    instructions = read_text_or_file(dim.instructions, loaded.base_dir)
    st = loaded.study
    return ResolvedCampaign(name, st.study, spec, loaded.base_dir, dim, points, instructions, items, known, nonwords, title=st.title,
                            information=read_text_or_file(st.information, loaded.base_dir),
                            consent=read_text_or_file(st.consent, loaded.base_dir))  # fmt: skip


def _nonwords(value: list[str] | str, base_dir: Path, name: str) -> list[str]:
    if isinstance(value, list):
        words = value
    else:
        path = Path(value) if Path(value).is_absolute() else base_dir / value
        if not path.is_file():
            raise WorkbenchError(f"campaigns.{name}.controls.nonwords: no file at {path}.")
        words = path.read_text(encoding="utf-8").splitlines()
    return list(dict.fromkeys(w.strip() for w in words if w.strip()))


def stored_campaign(session: Session, name: str) -> Campaign:
    row = session.scalar(select(Campaign).where(Campaign.name == name))
    if row is None:
        raise WorkbenchError(f"campaign {name!r} has not been pushed yet: run `workbench annotate push {name}` first.")
    return row
