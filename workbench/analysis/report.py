"""Validation reports: how close each rater comes to the gold norms, and to the human ceiling.

``collect`` reads one dimension's ratings from the store (a Session) into an
items x raters table; ``analyse`` turns it into a :class:`DimensionReport`
(pure: numbers only, deterministic for a seed); ``build_report`` does both
for every dimension asked for; ``make_plots`` draws the figures and
``write_report`` writes HTML, Markdown or JSON.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from itertools import combinations
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from sqlalchemy import select
from sqlalchemy.orm import Session

from workbench import __version__
from workbench.analysis import stats
from workbench.analysis.report_model import (
    AgreementRow,
    CalibrationRow,
    Comparison,
    Disagreement,
    DimensionReport,
    ErrorAnalysis,
    Heatmap,
    MassSummary,
    Reliability,
    Report,
    ResidualBand,
)
from workbench.errors import WorkbenchError
from workbench.store.itemsets import resolve_items
from workbench.store.models import Dimension, Item, Rater, Rating

FREQUENCY_BANDS = (0.0, 2.0, 3.0, 4.0, 5.0, 8.0)  # Zipf: rare ... very common
LENGTH_BANDS = (1, 4, 6, 8, 10, 100)  # characters
LARGEST = 15
MAX_COMPARED = 8  # raters compared pairwise (28 pairs)
MASS_BINS = tuple(np.round(np.linspace(0, 1, 11), 1))


@dataclass
class DimensionData:
    """One dimension's ratings: values[item, rater] (NaN: not rated), plus the evidence."""

    dimension: str
    scale: tuple[float | None, float | None]
    gold: list[str]
    raters: list[str]
    kinds: dict[str, str]
    values: pd.DataFrame  # index: item text, columns: gold + raters
    answers: pd.DataFrame  # same shape, raw answers of llm raters
    mass: pd.DataFrame  # same shape, probability on scale tokens
    min_mass: dict[str, float]
    humans: pd.DataFrame | None = None  # items x human annotators
    item_ids: dict[str, int] = field(default_factory=dict)


def _dimensions(session: Session, dimension: str | None) -> list[Dimension]:
    if dimension:
        dim = session.scalar(select(Dimension).where(Dimension.name == dimension))
        if dim is None:
            known = ", ".join(session.scalars(select(Dimension.name).order_by(Dimension.name))) or "none"
            raise WorkbenchError(f"no dimension {dimension!r} in the store (it has: {known}).")
        return [dim]
    return list(session.scalars(select(Dimension).order_by(Dimension.name)))


def collect(session: Session, dim: Dimension, *, gold: list[str] | None, raters: list[str] | None,
            items: str | None) -> DimensionData | None:
    """The ratings of one dimension, or None when it has no gold and no rater to report on."""
    q = (
        select(Item.id, Item.text, Rater.name, Rater.kind, Rater.config, Rating.value, Rating.raw_answer, Rating.mass)
        .join(Rating, Rating.item_id == Item.id)
        .join(Rater, Rater.id == Rating.rater_id)
        .where(Rating.dimension_id == dim.id, Rating.replicate == 0)
    )
    if items:
        wanted = set(resolve_items(session, items))
    rows = [r for r in session.execute(q) if not items or r[0] in wanted]
    if not rows:
        return None
    long = pd.DataFrame(rows, columns=["item_id", "item", "rater", "kind", "config", "value", "answer", "mass"])
    kinds = dict(zip(long["rater"], long["kind"], strict=False))
    gold_names = _pick(gold, sorted(n for n, k in kinds.items() if k == "norm"), kinds, "gold dataset", dim.name)
    rater_names = _pick(
        raters, sorted(n for n, k in kinds.items() if k in ("llm", "model") and "@" not in n), kinds, "rater", dim.name
    )
    humans = long[long["kind"] == "human"]
    cols = gold_names + [r for r in rater_names if r not in gold_names]
    chosen = long[long["rater"].isin(cols)]
    values = chosen.pivot_table(index="item", columns="rater", values="value", aggfunc="first").reindex(columns=cols)
    values = values.sort_index()
    answers = chosen.pivot(index="item", columns="rater", values="answer").reindex(index=values.index, columns=cols)
    mass = chosen.pivot(index="item", columns="rater", values="mass").reindex(index=values.index, columns=cols)
    configs = dict(zip(long["rater"], long["config"], strict=False))
    min_mass = {r: float((configs.get(r) or {}).get("min_mass", 0.5)) for r in rater_names}
    human_matrix = None
    if humans["rater"].nunique() >= 2:
        human_matrix = humans.pivot_table(index="item", columns="rater", values="value", aggfunc="first")
    return DimensionData(
        dim.name, (dim.scale_min, dim.scale_max), gold_names, [r for r in rater_names if r not in gold_names],
        {c: kinds[c] for c in cols}, values.astype(float), answers, mass.astype(float), min_mass, human_matrix,
        dict(zip(long["item"], long["item_id"], strict=False)),
    )  # fmt: skip


def _pick(asked: list[str] | None, default: list[str], kinds: dict[str, str], what: str, dimension: str) -> list[str]:
    if asked is None:
        return default
    missing = [n for n in asked if n not in kinds]
    if missing:
        raise WorkbenchError(f"no {what} {missing[0]!r} with ratings on {dimension!r}: see `workbench status`.")
    return list(dict.fromkeys(asked))


# --------------------------------------------------------------------------- analysis


def _row(a: stats.Agreement, rater: str, kind: str, gold: str) -> AgreementRow:
    d = a.to_dict()
    return AgreementRow(
        rater=rater, rater_kind=kind, gold=gold, n=d["n"],
        spearman=d["spearman"], spearman_ci=tuple(d["spearman_ci"]), pearson=d["pearson"], pearson_ci=tuple(d["pearson_ci"]),
        mae=d["mae"], rmse=d["rmse"], bias=d["bias"], sd_ratio=d["sd_ratio"], note=d["note"],
    )  # fmt: skip


def _table(data: DimensionData, n_boot: int, seed: int, ci: float) -> tuple[list[AgreementRow], list[AgreementRow]]:
    table, ceiling = [], []
    v = data.values
    for g in data.gold:
        if data.raters:
            results = stats.agreement_many(v[data.raters].to_numpy(), v[g].to_numpy(), n_boot=n_boot, seed=seed, ci=ci)
            table += [_row(a, r, data.kinds[r], g) for a, r in zip(results, data.raters, strict=True)]
    for g1, g2 in combinations(data.gold, 2):
        a = stats.agreement(v[g2].to_numpy(), v[g1].to_numpy(), n_boot=n_boot, seed=seed, ci=ci)
        ceiling.append(_row(a, g2, "norm", g1))
    return table, ceiling


def _comparisons(data: DimensionData, n_boot: int, seed: int, ci: float) -> list[Comparison]:
    if not data.gold or len(data.raters) < 2:
        return []
    gold = data.gold[0]
    v = data.values
    out = []
    for a, b in combinations(data.raters[:MAX_COMPARED], 2):
        both = v[[a, b, gold]].dropna()
        if len(both) < 4:
            continue
        c = stats.compare_dependent(both[a], both[b], both[gold], names=(a, b), n_boot=n_boot, seed=seed, ci=ci).to_dict()
        sp = c["spearman"]
        out.append(Comparison(
            rater_a=a, rater_b=b, gold=gold, n=c["n"], spearman_a=sp["r_a"], spearman_b=sp["r_b"],
            difference=sp["difference"], difference_ci=tuple(sp["difference_ci"]),
            williams_t=sp["williams_t"], williams_p=sp["williams_p"], verdict=c["verdict"],
        ))  # fmt: skip
    return out


def _bands(residuals: np.ndarray, covariate: np.ndarray, edges: tuple, fmt: str) -> list[ResidualBand]:
    out = []
    for b in stats.residual_bands(residuals, covariate, edges):
        d = b.to_dict()
        label = fmt.format(lo=b.low, hi=b.high)
        out.append(ResidualBand(band=label, low=d["low"], high=d["high"], n=d["n"], mean_residual=d["mean_residual"], mae=d["mae"]))
    return out


def _zipf(words: list[str], language: str = "en") -> np.ndarray | None:
    try:
        from workbench.raters.baselines import word_frequency
    except ImportError:
        return None
    try:
        return word_frequency(words, language=language)
    except (ImportError, WorkbenchError):
        return None


def _errors(data: DimensionData) -> list[ErrorAnalysis]:
    if not data.gold:
        return []
    gold = data.gold[0]
    out = []
    zipf_all = _zipf(list(data.values.index))  # once for every word of the dimension
    zipf_of = dict(zip(data.values.index, zipf_all, strict=True)) if zipf_all is not None else None
    for r in data.raters:
        pair = data.values[[r, gold]].dropna()
        if pair.empty:
            continue
        words = list(pair.index)
        resid = (pair[r] - pair[gold]).to_numpy()
        order = np.argsort(-np.abs(resid), kind="stable")[:LARGEST]
        largest = [
            Disagreement(
                item=words[i], value=float(pair[r].iloc[i]), gold_value=float(pair[gold].iloc[i]), residual=float(resid[i]),
                answer=_clean(data.answers.at[words[i], r]), mass=_float(data.mass.at[words[i], r]),
            )
            for i in order
        ]  # fmt: skip
        zipf = np.array([zipf_of[w] for w in words]) if zipf_of is not None else None
        by_freq = _bands(resid, zipf, FREQUENCY_BANDS, "Zipf {lo:g}-{hi:g}") if zipf is not None else []
        lengths = np.array([len(w) for w in words], dtype=float)
        by_len = _bands(resid, lengths, LENGTH_BANDS, "{lo:g}-{hi:g} letters")
        out.append(ErrorAnalysis(rater=r, gold=gold, largest=largest, by_frequency=by_freq, by_length=by_len, mass=_mass(data, r)))
    return out


def _mass(data: DimensionData, rater: str) -> MassSummary | None:
    if data.kinds.get(rater) != "llm":
        return None
    m = data.mass[rater].dropna().to_numpy()
    if m.size == 0:
        return None
    counts, _ = np.histogram(np.clip(m, 0, 1), bins=np.array(MASS_BINS))
    return MassSummary(
        n=int(m.size), median=float(np.median(m)), low_mass=int((m < data.min_mass.get(rater, 0.5)).sum()),
        bins=list(MASS_BINS), counts=[int(c) for c in counts],
    )  # fmt: skip


def _clean(value: Any) -> str | None:
    return None if value is None or (isinstance(value, float) and np.isnan(value)) else str(value)


def _float(value: Any) -> float | None:
    return None if value is None or pd.isna(value) else float(value)


def _reliability(data: DimensionData, n_boot: int, seed: int) -> Reliability | None:
    m = data.humans
    if m is None:
        return None
    sh = stats.split_half(m.to_numpy(), n_splits=min(n_boot, 200), seed=seed).to_dict()
    ic = stats.icc(m.to_numpy()).to_dict()
    alpha = stats.krippendorff_alpha_interval(m.to_numpy())
    notes = [n for n in (sh.get("note"), ic.get("note")) if n]
    return Reliability(
        raters=[str(c) for c in m.columns], n_items=int(m.notna().sum(axis=1).ge(2).sum()),
        split_half=sh["reliability"], split_half_interval=tuple(sh["reliability_interval"]), n_splits=sh["n_splits"],
        icc2_1=ic["icc2_1"], icc2_k=ic["icc2_k"], icc3_k=ic["icc3_k"], icc_items=ic["n_items"],
        krippendorff_alpha=None if np.isnan(alpha) else float(alpha), note="; ".join(notes) or None,
    )  # fmt: skip


def _calibration(session: Session | None, data: DimensionData, calibrate: dict[str, str] | None,
                 n_boot: int, seed: int, ci: float) -> list[CalibrationRow]:
    if not calibrate or not data.gold or session is None:
        return []
    gold = data.gold[0]
    id_of = data.item_ids
    train_ids, test_ids = set(resolve_items(session, calibrate["train"])), set(resolve_items(session, calibrate["test"]))
    in_train = np.array([id_of.get(w) in train_ids for w in data.values.index])
    in_test = np.array([id_of.get(w) in test_ids for w in data.values.index])
    out = []
    for r in data.raters:
        train = data.values.loc[in_train, [r, gold]].dropna()
        test = data.values.loc[in_test, [r, gold]].dropna()
        if len(train) < 3 or len(test) < 3 or train[r].nunique() < 2:
            continue
        fit = stats.calibrate(train[r], train[gold])
        raw = stats.agreement(test[r], test[gold], n_boot=n_boot, seed=seed, ci=ci)
        cal = stats.agreement(fit.apply(test[r]), test[gold], n_boot=n_boot, seed=seed, ci=ci)
        out.append(CalibrationRow(
            rater=r, gold=gold, train=calibrate["train"], test=calibrate["test"], intercept=fit.intercept, slope=fit.slope,
            n_train=fit.n, raw=_row(raw, r, data.kinds[r], gold), calibrated=_row(cal, r + " (calibrated)", data.kinds[r], gold),
        ))  # fmt: skip
    return out


def _heatmap(data: DimensionData) -> Heatmap:
    cols = data.gold + data.raters
    v = data.values[cols]
    rho = pd.DataFrame(np.eye(len(cols)), index=cols, columns=cols)
    present = v.notna().astype(int)
    n = present.T @ present
    # Spearman on the items each pair shares (ranks within the pair, average ties)
    for a, b in combinations(cols, 2):
        both = v[[a, b]].dropna()
        r = both.rank().corr().iloc[0, 1] if len(both) >= 3 else np.nan
        rho.loc[a, b] = rho.loc[b, a] = r
    return Heatmap(
        labels=cols,
        rho=[[None if pd.isna(x) else round(float(x), 6) for x in row] for row in rho.to_numpy()],
        n=[[int(x) for x in row] for row in n.to_numpy()],
    )


def analyse(data: DimensionData, *, n_boot: int = 1000, seed: int = 0, ci: float = 0.95,
            session: Session | None = None, calibrate: dict[str, str] | None = None) -> DimensionReport:
    """Every number of one dimension's report."""
    table, ceiling = _table(data, n_boot, seed, ci)
    return DimensionReport(
        dimension=data.dimension, scale=data.scale, gold=data.gold, raters=data.raters,
        table=table, ceiling=ceiling, reliability=_reliability(data, n_boot, seed),
        comparisons=_comparisons(data, n_boot, seed, ci), errors=_errors(data),
        calibration=_calibration(session, data, calibrate, n_boot, seed, ci), heatmap=_heatmap(data),
        plots=plot_names(data),
    )  # fmt: skip


def build_report(
    session: Session,
    *,
    dimension: str | None = None,
    gold: list[str] | None = None,
    raters: list[str] | None = None,
    items: str | None = None,
    n_boot: int = 1000,
    seed: int = 0,
    ci: float = 0.95,
    calibrate: dict[str, str] | None = None,
    title: str = "Validation report",
) -> tuple[Report, list[DimensionData]]:
    """The report over every dimension with something to report (or the one asked for), and its data."""
    parts, datas = [], []
    for dim in _dimensions(session, dimension):
        data = collect(session, dim, gold=gold if dimension or gold is None else _known(session, dim, gold),
                       raters=raters if dimension or raters is None else _known(session, dim, raters), items=items)  # fmt: skip
        if data is None or not (data.gold or data.raters):
            continue
        datas.append(data)
        parts.append(analyse(data, n_boot=n_boot, seed=seed, ci=ci, session=session, calibrate=calibrate))
    if not parts:
        raise WorkbenchError("nothing to report: the store has no ratings for the dimensions, raters and items asked for.")
    return Report(title=title, workbench=__version__, seed=seed, n_boot=n_boot, ci=ci, items=items, dimensions=parts), datas


def _known(session: Session, dim: Dimension, names: list[str]) -> list[str]:
    """Of the names asked for across dimensions, those that rate this one."""
    q = select(Rater.name).join(Rating, Rating.rater_id == Rater.id).where(Rating.dimension_id == dim.id).distinct()
    have = set(session.scalars(q))
    return [n for n in names if n in have]


# --------------------------------------------------------------------------- plots and files


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", text).strip("_") or "x"


def plot_names(data: DimensionData) -> dict[str, str]:
    d = _slug(data.dimension)
    names = {"heatmap": f"{d}-heatmap.png"}
    if data.gold:
        for r in data.raters:
            names[f"scatter:{r}"] = f"{d}-scatter-{_slug(r)}.png"
            names[f"residuals:{r}"] = f"{d}-residuals-{_slug(r)}.png"
        if len(data.gold) > 1:
            names[f"scatter:{data.gold[1]}"] = f"{d}-scatter-{_slug(data.gold[1])}.png"
    for r in data.raters if data.gold else []:
        if data.kinds.get(r) == "llm" and data.mass[r].notna().any():
            names[f"mass:{r}"] = f"{d}-mass-{_slug(r)}.png"
    return names


def make_plots(report: Report, datas: list[DimensionData]) -> dict[str, bytes]:
    """file name -> PNG bytes, for every plot the report names."""
    from workbench.analysis import plots

    out: dict[str, bytes] = {}
    for part, data in zip(report.dimensions, datas, strict=True):
        out[part.plots["heatmap"]] = plots.heatmap(part.heatmap.labels, part.heatmap.rho)
        for key, name in part.plots.items():
            kind, _, rater = key.partition(":")
            if kind not in ("scatter", "residuals"):
                continue
            gold = data.gold[0]
            pair = data.values[[rater, gold]].dropna()
            x, y = pair[rater].to_numpy(), pair[gold].to_numpy()
            if kind == "scatter":
                out[name] = plots.scatter(x, y, rater=rater, gold=gold, scale=data.scale)
            else:
                out[name] = plots.residuals(x, y, rater=rater, gold=gold)
        for err in part.errors:
            name = part.plots.get(f"mass:{err.rater}")
            if name and err.mass is not None:
                out[name] = plots.mass_histogram(err.mass.bins, err.mass.counts, rater=err.rater)
    return out


FORMATS = ("html", "md", "json")


def _finite(value: Any) -> Any:
    """NaN and infinities become null: JSON has no such numbers."""
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_finite(v) for v in value]
    if isinstance(value, float) and not np.isfinite(value):
        return None
    return value


def write_report(report: Report, datas: list[DimensionData], out: Path, fmt: str) -> list[Path]:
    """Write the report as html (one self-contained file), md (plus PNGs beside it) or json; returns the files."""
    if fmt not in FORMATS:
        raise WorkbenchError(f"unknown report format {fmt!r}: use html, md or json.")
    out.parent.mkdir(parents=True, exist_ok=True)
    if fmt == "json":
        data = _finite(report.model_dump(mode="json"))
        out.write_text(json.dumps(data, indent=2, ensure_ascii=False, allow_nan=False) + "\n", encoding="utf-8")
        return [out]
    from workbench.analysis import render

    images = make_plots(report, datas)
    if fmt == "html":
        out.write_text(render.render_html(report, images), encoding="utf-8")
        return [out]
    written = [out]
    out.write_text(render.render_markdown(report), encoding="utf-8")
    for name, data in images.items():
        (out.parent / name).write_bytes(data)
        written.append(out.parent / name)
    return written
