"""A study's fine-tunes: find one by name and hand the fine-tune runner what it needs."""

from __future__ import annotations

from sqlalchemy import Engine
from sqlalchemy.orm import Session

from workbench.finetune import run as ft
from workbench.study.load import LoadedStudy


def finetune_run(loaded: LoadedStudy, name: str) -> ft.FinetuneRun:
    """The study's fine-tune ``name`` with the raters, dimensions and folder it is resolved against."""
    study = loaded.study
    ft.check_name(name, study.finetunes, str(loaded.path))
    return ft.FinetuneRun(name, study.finetunes[name], dict(study.raters), tuple(study.dimensions), loaded.base_dir, str(loaded.path))


def start_finetune(engine: Engine, loaded: LoadedStudy, name: str, **kwargs) -> ft.FinetuneReport:
    """Start or resume the study's fine-tune (see :func:`workbench.finetune.run.start_finetune`)."""
    return ft.start_finetune(engine, finetune_run(loaded, name), **kwargs)


def finetune_status(session: Session, loaded: LoadedStudy, name: str) -> ft.FinetuneReport:
    return ft.finetune_status(session, finetune_run(loaded, name))


def cancel_finetune(engine: Engine, loaded: LoadedStudy, name: str, **kwargs) -> ft.FinetuneReport:
    return ft.cancel_finetune(engine, finetune_run(loaded, name), **kwargs)
