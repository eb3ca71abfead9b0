"""`workbench annotate simulate`: replay a campaign with simulated annotators before anyone is paid.

The campaign's words that the norms (``--norms``: per-word mean, SD and n)
and the independent gold (``--against``) both have are rated by simulated
annotators drawn from the norms (workbench/analysis/planner.py), under each
strategy and budget; the prior (``--prior``, a machine rater) is calibrated
by split-conformal prediction on ``--calibration`` items (never the
campaign's words), against the norms' values there. Where the norms say how
often their people did not know a word (a campaign's pulled norms keep the
share of answers that were ratings, ``known``; so does an import with a count
of people who did not know the word), the simulated annotators say
"I don't know" at that rate, and the table counts those answers.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
from sqlalchemy import select
from sqlalchemy.orm import Session

from workbench.analysis.planner import DEFAULT_BUDGETS, STRATEGIES, Norm, Plan, Prior, simulate
from workbench.errors import WorkbenchError
from workbench.store.itemsets import gold_ratings, gold_values, resolve_items
from workbench.store.models import Dataset, Dimension
from workbench.study.load import LoadedStudy


@dataclass
class Simulation:
    campaign: str
    norms: str
    against: str
    prior: str | None
    plan: Plan

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self.plan)
        d["rows"] = [asdict(r) for r in self.plan.rows]
        return {"campaign": self.campaign, "norms": self.norms, "against": self.against, "prior": self.prior, **d}

    def plot(self) -> bytes:
        """Validity against human ratings spent, per strategy, beside the real norm and the prior alone (PNG)."""
        from workbench.analysis import plots

        p = self.plan
        return plots.planner([(r.strategy, r.ratings, r.spearman, r.ci[0], r.ci[1]) for r in p.rows], real_norm=p.real_norm,
                             machine=p.machine, norm_ratings=p.norm_ratings,
                             title=f"{self.campaign}: validity against {self.against}")  # fmt: skip

    def lines(self) -> list[str]:
        p = self.plan
        out = [
            f"{self.campaign}: {p.words} words with {self.norms} (mean, SD, n) and {self.against}; {self.norms} used "
            f"{p.norm_ratings} ratings. Validity: Spearman against {self.against}, 95% bootstrap interval.",
            f"  real {self.norms} (its published means): {p.real_norm:.3f} [{p.real_norm_ci[0]:.3f}, {p.real_norm_ci[1]:.3f}]",
        ]
        if p.machine is not None:
            out.append(f"  machine prior {self.prior} alone:  {p.machine:.3f} [{p.machine_ci[0]:.3f}, {p.machine_ci[1]:.3f}]")
        idk = any(r.unknown for r in p.rows)
        out.append(
            f"  {'strategy':<10} {'budget':>6} {'ratings':>8} " + ("don't-know " if idk else "") + f"{'words':>6} {'rho':>6}  interval"
        )
        for r in p.rows:
            out.append(
                f"  {r.strategy:<10} {r.budget:>6.0%} {r.ratings:>8} " + (f"{r.unknown:>10} " if idk else "")
                + f"{r.words_rated:>6} {r.spearman:6.3f}  [{r.ci[0]:.3f}, {r.ci[1]:.3f}]"
            )  # fmt: skip
        full = [r for r in p.rows if r.strategy == "all-human" and r.budget == 1.0]
        if full and p.real_norm is not None:
            out.append(
                f"  The simulated all-human study at 100% ({full[0].spearman:.3f}) is below the real norm ({p.real_norm:.3f}): simulated "
                "annotators re-sample the published means, so their mean carries the published means' own error plus fresh "
                "rating noise. Compare strategies within the simulation."
            )
            out.extend("  " + n for n in p.notes[1:])
        else:
            out.extend("  " + n for n in p.notes)
        return out


def _known(distribution: Any) -> float | None:
    """The share of a word's answers that were ratings, where the norm kept it (a campaign's pulled norms do)."""
    if isinstance(distribution, dict) and isinstance(distribution.get("known"), int | float):
        return float(distribution["known"])
    return None


def _norms_scale(session: Session, dataset: str, dimension: str, dim: Dimension) -> tuple[float, float]:
    """The scale the norms' values are on: the one their import recorded (e.g. Glasgow's 1-7 in a study whose dimension
    is 1-5), else the dimension's. Simulated annotators rate on it; the prior is calibrated onto the norms' values."""
    details = session.scalar(select(Dataset.details).where(Dataset.name == dataset))
    entry = ((details or {}).get("dimensions") or {}).get(dimension) if isinstance(details, dict) else None
    scale = entry.get("stored_scale") if isinstance(entry, dict) else None
    if isinstance(scale, list) and len(scale) == 2 and all(isinstance(x, int | float) for x in scale) and scale[1] > scale[0]:
        return float(scale[0]), float(scale[1])
    return float(dim.scale_min), float(dim.scale_max)


def _norm_table(session: Session, dataset: str, dimension: str) -> dict[int, tuple[float, float | None, int | None, float | None]]:
    rows = gold_ratings(session, dataset, dimension, kind="norm")
    return {i: (g.value, g.sd, g.n, _known(g.distribution)) for i, g in rows.items()}


def simulate_campaign(
    session: Session,
    loaded: LoadedStudy,
    campaign: str,
    *,
    norms: str,
    against: str,
    prior: str | None = None,
    calibration: str | None = None,
    budgets: Sequence[float] = DEFAULT_BUDGETS,
    strategies: Sequence[str] = STRATEGIES,
    k: int | None = None,
    annotator_sd: float = 0.3,
    seed: int = 0,
    n_boot: int = 1000,
) -> Simulation:
    from workbench.annotate.campaign import campaign_spec

    spec = campaign_spec(loaded, campaign)
    dims = list(loaded.study.dimensions)
    dimension = spec.dimension or (dims[0] if len(dims) == 1 else None)
    if dimension is None:
        raise WorkbenchError(f"campaigns.{campaign}: the study has several dimensions: give the campaign a dimension:.")
    dim = session.scalar(select(Dimension).where(Dimension.name == dimension))
    if dim is None or dim.scale_min is None:
        raise WorkbenchError(f"dimension {dimension!r} is not in the store: run `workbench apply` first.")
    items = resolve_items(session, spec.items)
    table = _norm_table(session, norms, dimension)
    gold = gold_values(session, against, dimension)
    words = [i for i in items if i in table and i in gold]
    if len(words) < 10:
        raise WorkbenchError(
            f"simulate: only {len(words)} of the campaign's {len(items)} words have both {norms!r} and {against!r} values."
        )
    no_sd = sum(1 for i in words if table[i][1] is None)
    if no_sd:
        raise WorkbenchError(f"--norms {norms!r} has no SD for {no_sd} of the words: simulated annotators need each word's SD.")
    if k is None and any(table[i][2] is None for i in words):
        raise WorkbenchError(f"--norms {norms!r} has no n for some words: give --k, the ratings per word to plan for.")
    known = np.array([np.nan if table[i][3] is None else table[i][3] for i in words])
    norm = Norm(
        np.array([table[i][0] for i in words]), np.array([table[i][1] for i in words]),
        np.array([k if k is not None else table[i][2] for i in words]), known if np.isfinite(known).any() else None,
    )  # fmt: skip
    pri = None
    if prior is not None:
        if calibration is None:
            raise WorkbenchError(
                "--prior needs --calibration: an item set with norms values to calibrate the prior on (not the campaign's words)."
            )
        from workbench.analysis.intervals import calibrate_rater

        model, sig, _ = calibrate_rater(
            session, prior, gold=norms, calibration=calibration, dimension=dimension, reported=words, levels=[0.9]
        )
        vals = np.array([sig.values.get(i, np.nan) for i in words])
        S = sig.matrix(words)
        pri = Prior(np.where(np.isfinite(vals), model.point(np.nan_to_num(vals)), np.nan),
                    np.where(np.isfinite(vals), model.predictive_sd(np.nan_to_num(vals), S), np.nan))  # fmt: skip
    plan = simulate(norm, np.array([gold[i] for i in words]), scale=_norms_scale(session, norms, dimension, dim),
                    step=float(dim.scale_step or 1.0), prior=pri, budgets=budgets, strategies=strategies,
                    annotator_sd=annotator_sd, seed=seed, n_boot=n_boot, list_size=spec.list_size)  # fmt: skip
    if norm.known is not None:
        rate = float(np.mean(norm.unknown_rate()))
        plan.notes.append(
            f"Simulated annotators say \"I don't know\" at {norms}'s own rate per word ({rate:.1%} of answers on average): "
            "those answers are paid for and count in the ratings spent, but give no rating."
        )
    if prior is None:
        plan.notes.append("No --prior: only the all-human strategy was simulated (routed and adaptive need a machine prior).")
    return Simulation(campaign, norms, against, prior, plan)
