"""Analyse: every number of one dimension's report, from its collected ratings (pure: no database but calibration's item sets).

Correlations (and their bootstrap intervals, comparisons, the heatmap) use
each column's values as stored: a linear map would not change them. The
scale-dependent figures (MAE, RMSE, bias, SD ratio, residuals, calibrated
errors) use the values put on the report's value scale
(:attr:`DimensionData.scaled`), and only for pairs where both columns have a
linear map onto it; other pairs get correlations only, with a note.
Deterministic for a seed.
"""

from __future__ import annotations

from itertools import combinations
from typing import Any

import numpy as np
import pandas as pd
from sqlalchemy.orm import Session

from workbench.analysis import stats
from workbench.analysis.collect import DimensionData
from workbench.analysis.report_model import (
    AgreementRow,
    CalibrationRow,
    ColumnScale,
    Comparison,
    Coverage,
    CoverageAt,
    DimensionReport,
    Disagreement,
    ErrorAnalysis,
    Heatmap,
    IntervalRow,
    MassSummary,
    NoGoldRow,
    PPIEstimate,
    PPIRow,
    Reliability,
    ResidualBand,
    TrainedOn,
)
from workbench.analysis.scales import summary
from workbench.analysis.write import plot_names
from workbench.errors import WorkbenchError
from workbench.numeric import json_safe
from workbench.store.itemsets import resolve_items

FREQUENCY_BANDS = (0.0, 2.0, 3.0, 4.0, 5.0, 8.0)  # Zipf: rare ... very common
LENGTH_BANDS = (1, 4, 6, 8, 10, 100)  # characters
LARGEST = 15
MAX_COMPARED = 8  # raters compared pairwise (28 pairs)
MASS_BINS = tuple(np.round(np.linspace(0, 1, 11), 1))
SCALE_DEPENDENT = ("mae", "rmse", "bias", "sd_ratio")


def _row(
    data: DimensionData,
    a: stats.Agreement,
    rater: str,
    kind: str,
    gold: str,
    x: Any = None,
    y: Any = None,
    *,
    label: str | None = None,
    on_gold_scale: bool = False,
) -> AgreementRow:
    """A table row: correlations from `a`; errors from the pairs on the value scale (x, y), or none when not comparable.

    on_gold_scale: x was put on the gold's scale by a fitted line, so only gold needs a map.
    """
    d = a.to_dict()
    notes = [d["note"]] if d["note"] else []
    notes += data.scale_notes(gold) if on_gold_scale else data.scale_notes(rater, gold)
    if data.comparable(gold, gold) if on_gold_scale else data.comparable(rater, gold):
        if x is None:
            pair = data.scaled[[rater, gold]].dropna()
            x, y = pair[rater].to_numpy(), pair[gold].to_numpy()
        errs = json_safe(stats.errors(x, y))
    else:
        errs = dict.fromkeys(SCALE_DEPENDENT)
    return AgreementRow(
        rater=label or rater, rater_kind=kind, gold=gold, n=d["n"],
        spearman=d["spearman"], spearman_ci=tuple(d["spearman_ci"]), pearson=d["pearson"], pearson_ci=tuple(d["pearson_ci"]),
        **errs, note="; ".join(notes) or None,
    )  # fmt: skip


def _table(data: DimensionData, n_boot: int, seed: int, ci: float) -> tuple[list[AgreementRow], list[AgreementRow]]:
    table, ceiling = [], []
    v = data.values
    for g in data.gold:
        if data.raters:
            results = stats.agreement_many(v[data.raters].to_numpy(), v[g].to_numpy(), n_boot=n_boot, seed=seed, ci=ci)
            table += [_row(data, a, r, data.kinds[r], g) for a, r in zip(results, data.raters, strict=True)]
    for g1, g2 in combinations(data.gold, 2):
        a = stats.agreement(v[g2].to_numpy(), v[g1].to_numpy(), n_boot=n_boot, seed=seed, ci=ci)
        ceiling.append(_row(data, a, g2, "norm", g1))
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
    """Largest disagreements and residuals by band, on the value scale, for raters comparable with the first gold."""
    if not data.gold:
        return []
    gold = data.gold[0]
    out = []
    zipf_of = None
    for r in data.raters:
        if not data.comparable(r, gold):
            continue
        pair = data.scaled[[r, gold]].dropna()
        if pair.empty:
            continue
        if zipf_of is None:  # once for every word of the dimension
            zipf_all = _zipf(list(data.values.index))
            zipf_of = dict(zip(data.values.index, zipf_all, strict=True)) if zipf_all is not None else {}
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
        zipf = np.array([zipf_of[w] for w in words]) if zipf_of else None
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
        excluded=dict(data.excluded),
    )  # fmt: skip


def _calibration(
    session: Session | None, data: DimensionData, calibrate: dict[str, str] | None, n_boot: int, seed: int, ci: float
) -> list[CalibrationRow]:
    """Fit gold (on the value scale) ~ rater (as stored) on the train items; report raw and calibrated on the test items.

    The line absorbs the rater's scale, so the calibrated errors need only
    gold on the value scale; without that there is nothing to report.
    """
    if not calibrate or not data.gold or session is None:
        return []
    gold = data.gold[0]
    if not data.maps.get(gold) or not data.maps[gold].mapped:
        return []
    id_of = data.item_ids
    train_ids, test_ids = set(resolve_items(session, calibrate["train"])), set(resolve_items(session, calibrate["test"]))
    in_train = np.array([id_of.get(w) in train_ids for w in data.values.index])
    in_test = np.array([id_of.get(w) in test_ids for w in data.values.index])
    x_all, y_all = data.values, data.scaled
    out = []
    for r in data.raters:
        train = pd.DataFrame({"x": x_all.loc[in_train, r], "y": y_all.loc[in_train, gold]}).dropna()
        test = pd.DataFrame({"x": x_all.loc[in_test, r], "y": y_all.loc[in_test, gold]}).dropna()
        if len(train) < 3 or len(test) < 3 or train["x"].nunique() < 2:
            continue
        try:
            fit = stats.calibrate(train["x"], train["y"])
        except ValueError:  # values too large for a line
            continue
        scaled_test = data.scaled.loc[test.index, [r, gold]]
        raw = stats.agreement(test["x"], test["y"], n_boot=n_boot, seed=seed, ci=ci)
        calibrated = fit.apply(test["x"])
        cal = stats.agreement(calibrated, test["y"], n_boot=n_boot, seed=seed, ci=ci)
        out.append(CalibrationRow(
            rater=r, gold=gold, train=calibrate["train"], test=calibrate["test"], intercept=fit.intercept, slope=fit.slope,
            n_train=fit.n, raw=_row(data, raw, r, data.kinds[r], gold, scaled_test[r].to_numpy(), scaled_test[gold].to_numpy()),
            calibrated=_row(data, cal, r, data.kinds[r], gold, calibrated, test["y"].to_numpy(),
                            label=r + " (calibrated)", on_gold_scale=True),
        ))  # fmt: skip
    return out


def _intervals(session: Session | None, data: DimensionData, intervals: dict | None, seed: int) -> list[IntervalRow]:
    """Each rater's conformal intervals, calibrated on the calibration set, covered on the reported items."""
    if not intervals or not data.gold or session is None:
        return []
    from workbench.analysis.intervals import calibrate_rater, rater_coverage

    gold = intervals.get("gold") or data.gold[0]
    levels = intervals.get("levels") or [0.8, 0.9, 0.95]
    reported = sorted(set(data.item_ids.values()))
    out = []
    for r in data.raters:
        model, sig, cal_ids = calibrate_rater(
            session, r, gold=gold, calibration=intervals["calibration"], dimension=data.dimension, reported=reported,
            levels=levels, disagreement=[d for d in intervals.get("disagreement") or [] if d != r], seed=seed,
        )  # fmt: skip
        cov = rater_coverage(session, model, sig, gold=gold, dimension=data.dimension, items=reported, levels=levels)
        out.append(IntervalRow(
            rater=r, gold=gold, calibration=intervals["calibration"], n_calibration=len(cal_ids), n=cov[0].n if cov else 0,
            signals=list(model.difficulty.names),
            coverage=[CoverageAt(level=c.level, covered=_finite(c.covered), mean_width=_finite(c.mean_width)) for c in cov],
        ))  # fmt: skip
    return out


def _ppi(data: DimensionData, spec: dict | None, seed: int, n_boot: int) -> list[PPIRow]:
    """The mean of the human norm, and its correlation with each other variable, over all the report's words."""
    if not spec:
        return []
    from workbench.analysis.ppi import ppi_correlation, ppi_mean

    machine, humans = spec["machine"], spec.get("humans") or (data.gold[0] if data.gold else None)
    level = spec.get("level") or 0.95
    cols = set(data.values.columns)
    for name, what in ((machine, "machine rater"), (humans, "human dataset")):
        if name is None or name not in cols:
            raise WorkbenchError(f"ppi: the {what} {name!r} is not in this report: list it among the report's raters or gold.")
    v = data.values
    has_m = v[machine].notna()
    lab = has_m & v[humans].notna()
    unl = has_m & v[humans].isna()
    rows = []

    def est(e):
        return PPIEstimate(value=_finite(e.value), value_interval=(_finite(e.low), _finite(e.high)))

    def row(stat, other, r):
        return PPIRow(statistic=stat, machine=machine, humans=humans, other=other, n_labeled=r.n_labeled, n_unlabeled=r.n_unlabeled,
                      naive=est(r.naive), classical=est(r.classical), ppi=est(r.ppi))  # fmt: skip

    r = ppi_mean(v.loc[lab, humans].to_numpy(), v.loc[lab, machine].to_numpy(), v.loc[unl, machine].to_numpy(), level=level)
    rows.append(row("mean", None, r))
    for other in spec.get("with") or []:
        if other not in cols:
            raise WorkbenchError(f"ppi: {other!r} is not in this report: list it among the report's raters or gold.")
        ok = v[other].notna()
        r = ppi_correlation(v.loc[lab & ok, humans].to_numpy(), v.loc[lab & ok, machine].to_numpy(), v.loc[lab & ok, other].to_numpy(),
                            v.loc[unl & ok, machine].to_numpy(), v.loc[unl & ok, other].to_numpy(), level=level,
                            n_resamples=n_boot, seed=seed)  # fmt: skip
        rows.append(row("correlation", other, r))
    return rows


def _finite(x: float) -> float | None:
    return None if x is None or not np.isfinite(x) else float(x)


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


def _scales(data: DimensionData) -> list[ColumnScale]:
    out = []
    for c in data.gold + data.raters:
        m = data.maps.get(c)
        if m is None:
            continue
        own = None if m.own is None else (m.own.low, m.own.high)
        out.append(ColumnScale(
            name=c, scale=own, open=bool(m.own and m.own.open), mapped=m.mapped, factor=m.factor, offset=m.offset,
            outside=m.outside, note=m.reason or m.note,
        ))  # fmt: skip
    return out


def coverage(data: DimensionData, targets: list[str] | None = None) -> Coverage:
    """Which words have gold, which do not (with every rater's value on those): the words the agreement table leaves out.

    targets: the report's item set, whose words count even when nobody rated them.
    """
    v = data.values
    has_gold = v[data.gold].notna().any(axis=1) if data.gold else pd.Series(False, index=v.index)
    words = list(v.index) if targets is None else sorted(set(v.index) | set(targets))
    without = [w for w in words if not (w in has_gold.index and bool(has_gold.at[w]))]
    rows = [NoGoldRow(item=w, values=[_float(v.at[w, r]) if w in v.index else None for r in data.raters]) for w in without]
    rated = [sum(row.values[j] is not None for row in rows) for j in range(len(data.raters))]
    return Coverage(items=len(words), with_gold=int(has_gold.sum()), without_gold=len(without), raters=list(data.raters),
                    rated=rated, rows=rows)  # fmt: skip


def analyse(
    data: DimensionData,
    *,
    n_boot: int = 1000,
    seed: int = 0,
    ci: float = 0.95,
    session: Session | None = None,
    calibrate: dict[str, str] | None = None,
    intervals: dict | None = None,
    targets: list[str] | None = None,
    ppi: dict | None = None,
) -> DimensionReport:
    """Every number of one dimension's report. targets: the words of the report's item set, if it has one."""
    table, ceiling = _table(data, n_boot, seed, ci)
    rows = _intervals(session, data, intervals, seed)
    plots = plot_names(data)
    if rows:
        from workbench.analysis.write import slug

        plots["coverage"] = f"{slug(data.dimension)}-coverage.png"
    return DimensionReport(
        dimension=data.dimension, scale=data.scale, value_scale=data.target,
        scale_note=summary({c: data.maps[c] for c in data.gold + data.raters if c in data.maps}, data.target),
        scales=_scales(data), gold=data.gold, raters=data.raters,
        table=table, ceiling=ceiling, reliability=_reliability(data, n_boot, seed),
        comparisons=_comparisons(data, n_boot, seed, ci), errors=_errors(data),
        calibration=_calibration(session, data, calibrate, n_boot, seed, ci), heatmap=_heatmap(data),
        intervals=rows, ppi=_ppi(data, ppi, seed, n_boot),
        trained=[TrainedOn(rater=r, **t) for r, t in data.trained.items()],
        coverage=coverage(data, targets),
        plots=plots,
    )  # fmt: skip
