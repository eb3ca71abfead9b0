"""The one shape every study resource kind has, and the registry that orders the kinds by what they need.

A kind is one class, registered under its name, that plans its entries of the
study against the store and applies what it planned::

    @register_kind("constant")
    class Constant(ResourceKind):
        section = "constants"          # the study file's key holding this kind's entries
        Spec = ConstantSpec            # one entry's model (a kind from outside brings its own)
        needs = ("dimension",)         # kinds whose steps must come first

        def plan(self, ctx):           # yields Steps: what apply would do, decided against the store
            for name, spec in self.entries(ctx.study):
                yield Step(self.label, name, "create" if ... else "unchanged", "detail", unit=spec)

        def apply(self, ctx, steps):   # carries out planned steps (those of one unit)
            ...

`make_plan` (study/apply.py) asks every kind, in the order their ``needs``
give (a topological order, ties broken by name), for its steps; `apply`
hands each unit's steps back to the kind that planned them. A step planned
after a change (``deferred``: the store it would be decided against does not
exist yet) is decided by the kind when apply reaches it. The built-in kinds
are the modules of ``workbench.study.kinds`` (imported on the first look-up);
a kind defined anywhere else registers itself when its module is imported,
or through the ``workbench.kinds`` entry-point group.
"""

from __future__ import annotations

import heapq
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar

from workbench.errors import WorkbenchError, did_you_mean
from workbench.plugins import KINDS, Registry, failure_note

if TYPE_CHECKING:
    from pydantic import BaseModel
    from sqlalchemy import Engine
    from sqlalchemy.orm import Session

VERBS = ("create", "update", "import", "replace", "rate", "write", "train", "unchanged")


@dataclass
class Step:
    """One row of the plan: a resource of the study and what apply does to it."""

    kind: str  # dimension | dataset | word list | item set | split | rater | finetune | hybrid | report | ...
    name: str
    action: str  # create | update | import | replace | rate | write | train | unchanged (or a kind's own verb)
    detail: str = ""
    # planned after a change: apply decides it when it gets there (the store it depends on is made by then)
    deferred: bool = field(default=False, compare=False)
    # what apply hands back to the kind: the steps sharing one unit are applied together (a file's datasets)
    unit: Any = field(default=None, compare=False, repr=False)
    owner: ResourceKind | None = field(default=None, compare=False, repr=False)

    def describe(self) -> str:
        return f"{self.action:<9} {self.kind} {self.name}" + (f"  ({self.detail})" if self.detail else "")

    def row(self) -> dict[str, str]:
        """The step as plain data: kind, name, action, detail."""
        return {"kind": self.kind, "name": self.name, "action": self.action, "detail": self.detail}


@dataclass
class PlanContext:
    """What a kind plans against: the study, the store (read only) and the steps planned before its own."""

    loaded: Any  # workbench.study.load.LoadedStudy (not imported: load -> models -> this registry)
    session: Session
    estimate_costs: bool = False
    steps: list[Step] = field(default_factory=list)
    check: Any = None  # a workbench.study.check.StudyCheck: the study's inputs as read by the checks (set by the `inputs` kind)

    @property
    def study(self) -> Any:
        return self.loaded.study

    @property
    def pending(self) -> bool:
        """True once a step planned so far changes the store: later steps cannot be decided against it yet."""
        return any(s.action != "unchanged" for s in self.steps)


@dataclass
class ApplyContext:
    """What a kind applies with: the store, the study, the plan's checks and the callers' callbacks."""

    engine: Engine
    loaded: Any  # workbench.study.load.LoadedStudy
    check: Any = None  # a workbench.study.check.StudyCheck
    on_step: Callable[[Step, Any], None] | None = None
    on_rater: Callable[[Any], None] | None = None
    on_rate_progress: Callable[[str], Callable[[int, int], None]] | None = None
    on_finetune_event: Callable[[str], None] | None = None
    on_finetune: Callable[[Any], None] | None = None

    @property
    def study(self) -> Any:
        return self.loaded.study

    def done(self, step: Step, results: Any = None) -> None:
        """Tell the caller a step is done (``results``: what an import reports, for the console)."""
        if self.on_step:
            self.on_step(step, results)

    def progress(self, name: str) -> Callable[[int, int], None] | None:
        return self.on_rate_progress(name) if self.on_rate_progress else None


class ResourceKind:
    """One kind of resource a study declares. Subclass it, set ``needs``, implement ``plan`` and ``apply``,
    register it."""

    name: ClassVar[str] = ""  # set by @register_kind
    label: ClassVar[str] = ""  # what the plan's rows call it (default: the name)
    needs: ClassVar[tuple[str, ...]] = ()  # kinds whose steps come before this kind's
    before: ClassVar[tuple[str, ...]] = ()  # kinds that need this one (a kind from outside joins the order with it)
    section: ClassVar[str | None] = None  # the study file's key holding the entries (default: none)
    Spec: ClassVar[type[BaseModel] | None] = None  # one entry's model, for a section the Study model does not have
    makes_datasets: ClassVar[bool] = False  # its entries are datasets: the plan does not list them as undeclared

    def entries(self, study: Any) -> list[tuple[str, Any]]:
        """The study's entries of this kind, in the order the study declares them."""
        return list(study.entries(self.section).items()) if self.section else []

    def provides(self, study: Any) -> list[str]:
        """Names of datasets or item sets the entries make, which other entries may draw on before they exist."""
        return []

    def plan(self, ctx: PlanContext) -> Iterator[Step]:
        """The steps apply would take, decided against ``ctx.session``; raise what apply would refuse."""
        raise NotImplementedError

    def apply(self, ctx: ApplyContext, steps: list[Step]) -> None:
        """Carry out the planned steps of one unit (each in its own transaction), telling ``ctx.done``."""
        raise NotImplementedError

    def step(self, name: str, action: str, detail: str = "", **kwargs: Any) -> Step:
        return Step(self.label or self.name, name, action, detail, owner=self, **kwargs)


_KINDS: Registry[type[ResourceKind]] = Registry("resource kind", "Kinds", ResourceKind, "workbench.study.kinds", KINDS)


def register_kind(name: str) -> Callable[[type[ResourceKind]], type[ResourceKind]]:
    """Class decorator: make a kind of study resource known to plan and apply under ``name``."""
    register = _KINDS.register(name, "register_kind")

    def decorate(cls: type[ResourceKind]) -> type[ResourceKind]:
        cls = register(cls)
        if not cls.__dict__.get("label"):
            cls.label = name
        return cls

    return decorate


def unregister_kind(name: str) -> None:
    """Forget a kind (a test's own, when it is done)."""
    _KINDS.forget(name)


def kind_names() -> list[str]:
    """Every registered kind's name, in the order plan and apply take them."""
    return [cls.name for cls in ordered_kinds()]


def kind_class(name: str) -> type[ResourceKind]:
    return _KINDS.get(name)


def ordered_kinds(kinds: Iterable[type[ResourceKind]] | None = None) -> list[type[ResourceKind]]:
    """The kinds (default: every registered one), each after the kinds it needs; among kinds free to go,
    by name. ``before`` adds the kind to the needs of the kinds it names. A need nobody registered, or kinds needing each other in a circle, is a WorkbenchError."""
    if kinds is None:
        kinds = _KINDS.classes()
    by_name = {cls.name: cls for cls in kinds}
    for cls in by_name.values():
        for need in cls.needs:
            if need not in by_name:
                raise WorkbenchError(
                    f"resource kind {cls.name!r} needs {need!r}, which no registered kind is"
                    f"{failure_note(KINDS)}.{did_you_mean(need, by_name)}"
                )
    waiting = {name: set(cls.needs) for name, cls in by_name.items()}
    for cls in by_name.values():
        for later in cls.before:
            if later in waiting:
                waiting[later].add(cls.name)
    ready = [name for name, needs in waiting.items() if not needs]
    heapq.heapify(ready)
    out: list[type[ResourceKind]] = []
    while ready:
        name = heapq.heappop(ready)
        out.append(by_name[name])
        for other, needs in waiting.items():
            if name in needs:
                needs.discard(name)
                if not needs:
                    heapq.heappush(ready, other)
        waiting[name] = {"(done)"}
    left = sorted(n for n in by_name if by_name[n] not in out)
    if left:
        raise WorkbenchError(f"resource kinds {_cycle(by_name, left)} need each other in a circle: no order puts each after what it needs.")
    return out


def _cycle(by_name: dict[str, type[ResourceKind]], left: list[str]) -> str:
    """One circle among the kinds left unordered, as a -> b -> a."""
    path = [left[0]]
    while True:
        cls = by_name[path[-1]]
        needs = set(cls.needs) | {n for n, other in by_name.items() if cls.name in other.before}
        nxt = next(n for n in sorted(needs) if n in left)
        if nxt in path:
            return " -> ".join([*path[path.index(nxt) :], nxt])
        path.append(nxt)


def provided_names(study: Any) -> set[str]:
    """Every name the study's entries make (datasets, word lists, item sets, splits' parts, hybrids), by any kind."""
    return {name for cls in _KINDS.classes() for name in cls().provides(study)}


def section_models() -> dict[str, type[BaseModel]]:
    """The study file sections registered kinds bring themselves (section key -> one entry's model)."""
    return {cls.section: cls.Spec for cls in _KINDS.classes() if cls.section and cls.Spec is not None}
