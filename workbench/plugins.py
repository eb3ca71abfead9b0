"""Plugins: rater backends, fine-tune trainers and study resource kinds from other distributions.

A separate distribution adds to the workbench by naming, in its ``pyproject.toml``,
a module under one of the entry-point groups below (as simonw/llm loads its
plugins)::

    [project.entry-points."workbench.backends"]
    constant = "workbench_constant"        # a module that @register_backend's

Each registry asks :func:`load_entry_points` for its group before its first
look-up. Every entry point of the group is imported once per process;
importing it registers what it defines (the same decorators the built-ins
use). A plugin that fails to import is reported as one line on stderr naming
its distribution and entry point, and skipped: the rest of the workbench
works, and a registry's "unknown name" message names the failure.

``WORKBENCH_PLUGINS`` limits which distributions load: a comma-separated list
of distribution names; empty loads none (unset: every installed plugin).
"""

from __future__ import annotations

import importlib
import os
import pkgutil
import sys
from collections.abc import Callable
from dataclasses import dataclass
from importlib.metadata import EntryPoint, entry_points
from typing import Any, Generic, TypeVar

from workbench.errors import WorkbenchError, did_you_mean

BACKENDS = "workbench.backends"  # rater backends: raters/backend.py
TRAINERS = "workbench.trainers"  # fine-tune trainers: finetune/trainer.py
KINDS = "workbench.kinds"  # study resource kinds

ENV = "WORKBENCH_PLUGINS"


@dataclass(frozen=True)
class Failure:
    """A plugin that could not be loaded."""

    group: str
    distribution: str
    name: str  # the entry point's name
    entry_point: str  # NAME = VALUE, as its pyproject says
    error: str  # the exception's type and first line

    def line(self) -> str:
        return f"workbench: plugin {self.distribution!r} ({self.group}: {self.entry_point}) failed to load and is skipped: {self.error}"


_LOADED: dict[str, list[str]] = {}  # group -> the entry points loaded (NAME = VALUE)
_FAILED: dict[str, list[Failure]] = {}


def _distribution(ep: EntryPoint) -> str:
    dist = getattr(ep, "dist", None)
    return str(dist.name) if dist is not None and getattr(dist, "name", None) else "?"


def _wanted() -> set[str] | None:
    """The distributions WORKBENCH_PLUGINS allows (None: all), names normalised as pip does."""
    value = os.environ.get(ENV)
    if value is None:
        return None
    return {_normal(n) for n in value.split(",") if n.strip()}


def _normal(name: str) -> str:
    return name.strip().lower().replace("_", "-").replace(".", "-")


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0]}" if text else type(exc).__name__


def load_entry_points(group: str) -> list[str]:
    """Import every entry point of ``group`` (once per process); returns those loaded, as NAME = VALUE.

    A plugin that raises while importing is reported on stderr (one line) and skipped; see :func:`failures`.
    """
    if group in _LOADED:
        return list(_LOADED[group])
    loaded: list[str] = []
    failed: list[Failure] = []
    _LOADED[group], _FAILED[group] = loaded, failed
    wanted = _wanted()
    seen: set[tuple[str, str, str]] = set()
    for ep in entry_points(group=group):
        dist = _distribution(ep)
        key = (_normal(dist), ep.name, ep.value)
        if key in seen:  # the same distribution found twice on sys.path
            continue
        seen.add(key)
        if wanted is not None and _normal(dist) not in wanted:
            continue
        label = f"{ep.name} = {ep.value}"
        try:
            ep.load()
        except Exception as exc:  # a broken plugin must not take the workbench down with it
            failure = Failure(group, dist, ep.name, label, _first_line(exc))
            failed.append(failure)
            print(failure.line(), file=sys.stderr)
            continue
        loaded.append(label)
    return list(loaded)


def failures(group: str) -> list[Failure]:
    """The plugins of ``group`` that failed to load (after :func:`load_entry_points`)."""
    return list(_FAILED.get(group, []))


def failure_note(group: str) -> str:
    """A short note to follow the name in an "unknown name" message: which plugins of the group failed to load
    ("" when none). Their errors were printed when they failed."""
    failed = failures(group)
    if not failed:
        return ""
    names = ", ".join(f"{f.distribution}: {f.name}" for f in failed)
    return f" (plugins that failed to load: {names})"


T = TypeVar("T", bound=type)


class Registry(Generic[T]):
    """Classes of one base registered under names: the rater backends, the fine-tune trainers and the study's
    resource kinds are each one. The built-ins are every module of ``package`` (each registers itself when
    imported), then the plugins of ``group``; both load at the first look-up."""

    def __init__(self, what: str, plural: str, base: type, package: str, group: str) -> None:
        self.what, self.plural, self.base, self.package, self.group = what, plural, base, package, group
        self._classes: dict[str, Any] = {}
        self._loaded = False

    def register(self, name: str, decorator: str) -> Callable[[T], T]:
        """A class decorator registering a subclass of the base under ``name`` (``decorator`` names it in errors)."""

        def decorate(cls: T) -> T:
            if not (isinstance(cls, type) and issubclass(cls, self.base)):
                raise TypeError(f"@{decorator}({name!r}) decorates a {self.base.__name__} subclass, not {cls!r}")
            current = self._classes.get(name)
            if current is not None and current.__qualname__ != cls.__qualname__:
                raise ValueError(f"a {self.what} named {name!r} is already registered ({current.__module__}.{current.__qualname__})")
            cls.name = name  # type: ignore[attr-defined]
            self._classes[name] = cls
            return cls

        return decorate

    def forget(self, name: str) -> None:
        """Unregister ``name`` (a test's own class, when it is done)."""
        self._classes.pop(name, None)

    def load(self) -> None:
        if self._loaded:
            return
        self._loaded = True
        package = importlib.import_module(self.package)
        for module in pkgutil.iter_modules(package.__path__):
            importlib.import_module(f"{self.package}.{module.name}")
        load_entry_points(self.group)

    def names(self) -> list[str]:
        """Every registered name, built-in ones first."""
        self.load()
        return list(self._classes)

    def classes(self) -> list[Any]:
        self.load()
        return list(self._classes.values())

    def get(self, name: str) -> Any:
        """The class registered under ``name``; a WorkbenchError (with a suggestion) when there is none."""
        self.load()
        cls = self._classes.get(name)
        if cls is None:
            known = ", ".join(self._classes)
            raise WorkbenchError(
                f"unknown {self.what} {name!r}{failure_note(self.group)}.{did_you_mean(name, self._classes)} {self.plural}: {known}."
            )
        return cls
