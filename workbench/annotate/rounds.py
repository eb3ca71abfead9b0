"""Adaptive campaigns: rounds of human ratings sent only where a hybrid norm is still unsure.

    campaigns:
      pilot:
        items: ft.test
        raters_per_item: 2        # each round's k: ratings per word per round (Label Studio: one k per project)
        adaptive: {hybrid: fam-hybrid, target_half_width: 0.4, max_per_word: 10, budget: 3000,
                   first_sample: 50, first_uncertain: 100, seed: 0}
    hybrids:
      fam-hybrid: {prior: stack, calibration: ft.train, gold: glasgow, humans: pilot, items: ft.test}

Round r is a campaign of its own, ``pilot.roundR``: a new set of lists (one
Label Studio project each) over the item set ``pilot.roundR``, pushed by
the campaign push (workbench/annotate/push.py) and pulled like any campaign
(``workbench annotate round pilot --pull``). The hybrid counts every round's
ratings as the campaign's. Round 1 sends a seeded sample (the calibration
sample) plus the words the prior is least sure of; each later round first
recomputes the hybrid from the store, then sends the open words (interval
half-width above the target, fewer than max_per_word ratings), widest first,
as far as the budget allows. A round is refused while the previous one is
open (some word short of its k ratings): pull it first, or pass force.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from sqlalchemy import insert, select
from sqlalchemy.orm import Session

from workbench.errors import WorkbenchError
from workbench.store.engine import bump_generation
from workbench.store.itemsets import item_texts, resolve_items, sample_items
from workbench.store.models import Campaign, Dataset, ItemSet, ItemSetMember
from workbench.study.load import LoadedStudy


def round_name(campaign: str, number: int) -> str:
    """Round ``number``'s campaign (and its dataset); its words are the item set NAME.words."""
    return f"{campaign}.round{number}"


def round_numbers(session: Session, campaign: str) -> list[int]:
    """The rounds made so far (their item sets), in order."""
    pattern = re.compile(rf"^{re.escape(campaign)}\.round(\d+)\.words$")
    names = session.scalars(select(ItemSet.name).where(ItemSet.name.like(f"{campaign}.round%")))
    return sorted(int(m.group(1)) for n in names if (m := pattern.match(n)))


@dataclass
class RoundInfo:
    number: int
    words: int
    k: int
    pushed: bool
    short: int  # words still short of k ratings (as of the last pull)

    @property
    def open(self) -> bool:
        return not self.pushed or self.short > 0


@dataclass
class RoundsStatus:
    campaign: str
    rounds: list[RoundInfo]
    settled: int
    open_words: int
    spent: int
    budget: int
    notes: list[str] = field(default_factory=list)

    def lines(self) -> list[str]:
        out = [f"Rounds of {self.campaign}: {len(self.rounds)}; ratings spent {self.spent} of a budget of {self.budget}; "
               f"words settled {self.settled}, open {self.open_words}."]  # fmt: skip
        for r in self.rounds:
            state = "not pushed" if not r.pushed else ("open" if r.short else "complete")
            out.append(f"  round {r.number}: {r.words} words x {r.k} ratings, {state}" + (f" ({r.short} words short)" if r.short else ""))
        out += ["  " + n for n in self.notes]
        return out


def _spec(loaded: LoadedStudy, campaign: str):
    from workbench.annotate.campaign import campaign_spec

    spec = campaign_spec(loaded, campaign)
    adaptive = getattr(spec, "adaptive", None)
    if adaptive is None:
        raise WorkbenchError(f"campaigns.{campaign}: not an adaptive campaign: give it adaptive: {{hybrid: NAME, target_half_width: ...}}.")
    hybrid = loaded.study.hybrids.get(adaptive.hybrid)
    if hybrid is None:
        raise WorkbenchError(f"campaigns.{campaign}.adaptive.hybrid: no hybrid named {adaptive.hybrid!r} in the study.")
    if hybrid.humans != campaign:
        raise WorkbenchError(
            f"hybrids.{adaptive.hybrid}.humans is {hybrid.humans!r}: an adaptive campaign's hybrid takes its humans from it."
        )
    return spec, adaptive, hybrid


def _round_info(session: Session, campaign: str, number: int, k: int) -> RoundInfo:
    name = round_name(campaign, number)
    words = len(resolve_items(session, name + ".words"))
    row = session.scalar(select(Campaign).where(Campaign.name == name))
    if row is None or row.pushed_at is None:
        return RoundInfo(number, words, k, False, words)
    from workbench.annotate.status import campaign_status

    st = campaign_status(session, name)
    return RoundInfo(number, words, int((row.config or {}).get("raters_per_item", k)), True, len(st.short))


def _posteriors(session: Session, hybrid_name: str) -> dict[int, tuple[float, int, float | None]]:
    """item id -> (interval half-width, human ratings, prior sd) from the stored hybrid."""
    ds = session.scalar(select(Dataset).where(Dataset.name == hybrid_name))
    details = (ds.details or {}).get("hybrid", {}) if ds else {}
    cols = details.get("columns", [])
    out = {}
    from workbench.store.models import Rater, Rating

    rater = session.scalar(select(Rater).where(Rater.name == hybrid_name))
    ns = {} if rater is None else dict(session.execute(select(Rating.item_id, Rating.n).where(Rating.rater_id == rater.id)).all())
    for key, row in details.get("words", {}).items():
        w = dict(zip(cols, row, strict=False))
        out[int(key)] = ((w["high"] - w["low"]) / 2, int(ns.get(int(key)) or 0), w.get("prior_sd"))
    return out


def rounds_status(session: Session, loaded: LoadedStudy, campaign: str) -> RoundsStatus:
    spec, adaptive, _hybrid = _spec(loaded, campaign)
    rounds = [_round_info(session, campaign, n, spec.raters_per_item) for n in round_numbers(session, campaign)]
    post = _posteriors(session, adaptive.hybrid)
    items = resolve_items(session, spec.items)
    settled = sum(1 for i in items if i in post and (post[i][0] <= adaptive.target_half_width or post[i][1] >= adaptive.max_per_word))
    spent = sum(v[1] for v in post.values())
    notes = [] if post else [f"the hybrid {adaptive.hybrid!r} is not in the store yet: run `workbench apply`."]
    return RoundsStatus(campaign, rounds, settled, len(items) - settled, spent, adaptive.budget, notes)


def plan_round(session: Session, loaded: LoadedStudy, campaign: str, *, force: bool = False) -> tuple[int, list[int]]:
    """The next round's number and words; saves its item set. The caller owns the transaction and recomputes the hybrid first."""
    spec, adaptive, _hybrid = _spec(loaded, campaign)
    done = round_numbers(session, campaign)
    if done:
        last = _round_info(session, campaign, done[-1], spec.raters_per_item)
        if last.open and not force:
            what = "has not been pushed" if not last.pushed else f"is still open ({last.short} words short of {last.k} ratings)"
            raise WorkbenchError(
                f"round {last.number} of {campaign} {what}: pull it (`workbench annotate round {campaign} --pull`) until it is "
                "complete, or pass --force to start the next round anyway."
            )
    number = (done[-1] if done else 0) + 1
    items = resolve_items(session, spec.items)
    post = _posteriors(session, adaptive.hybrid)
    if not post:
        raise WorkbenchError(f"the hybrid {adaptive.hybrid!r} is not in the store: run `workbench apply` first.")
    k = spec.raters_per_item
    spent = sum(v[1] for v in post.values())
    left = adaptive.budget - spent
    if left < k:
        raise WorkbenchError(f"{campaign}: the budget of {adaptive.budget} ratings is spent ({spent} so far): no further round.")
    texts = item_texts(session, items)
    if number == 1:
        sample = sample_items(session, items, min(adaptive.first_sample, len(items)), adaptive.seed)
        by_prior = sorted((i for i in items if i not in set(sample)), key=lambda i: (-(post.get(i, (0, 0, 0))[2] or 0.0), texts[i]))
        words = list(sample) + by_prior[: adaptive.first_uncertain]
    else:
        open_words = [i for i in items if i in post and post[i][0] > adaptive.target_half_width and post[i][1] < adaptive.max_per_word]
        words = sorted(open_words, key=lambda i: (-post[i][0], texts[i]))
        if not words:
            raise WorkbenchError(f"{campaign}: every word is settled (half-width at most {adaptive.target_half_width} or "
                                 f"{adaptive.max_per_word} ratings): no further round.")  # fmt: skip
    words = words[: max(left // k, 0)]
    if not words:
        raise WorkbenchError(f"{campaign}: no word to send in round {number}.")
    item_set = ItemSet(name=round_name(campaign, number) + ".words", description=f"round {number} of the adaptive campaign {campaign}",
                       definition={"round": number, "campaign": campaign, "from": [spec.items]})  # fmt: skip
    session.add(item_set)
    session.flush()
    session.execute(insert(ItemSetMember), [{"item_set_id": item_set.id, "item_id": i} for i in sorted(words)])
    bump_generation(session)
    return number, sorted(words)


def round_study(loaded: LoadedStudy, campaign: str, number: int) -> LoadedStudy:
    """The study with round ``number`` declared as a campaign of its own (its lists, its dataset), for push and pull."""
    from dataclasses import replace

    spec = loaded.study.campaigns[campaign]
    name = round_name(campaign, number)
    derived = spec.model_copy(update={"items": name + ".words", "dataset": name, "adaptive": None})
    study = loaded.study.model_copy(update={"campaigns": {**loaded.study.campaigns, name: derived}})
    return replace(loaded, study=study)
