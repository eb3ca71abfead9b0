"""Loading a study file: YAML in, a validated Study out, or one clear error."""

from __future__ import annotations

import importlib.util
from dataclasses import dataclass
from pathlib import Path

import yaml
from pydantic import ValidationError

from workbench.errors import WorkbenchError
from workbench.ingest.presets import preset_specs
from workbench.ingest.readers import separator_char
from workbench.ingest.spec import DatasetSpec, RatingColumns
from workbench.study.models import DatasetSource, Study



@dataclass
class LoadedStudy:
    path: Path
    study: Study

    @property
    def base_dir(self) -> Path:
        return self.path.parent


def load_study(path: Path) -> LoadedStudy:
    path = Path(path)
    if not path.exists():
        raise WorkbenchError(f"{path}: no study file here. Create one with `workbench init DIR`, or pass --study PATH.")
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        raise WorkbenchError(f"{path}:{where}: not valid YAML ({getattr(exc, 'problem', exc)}).") from None
    except UnicodeDecodeError:
        raise WorkbenchError(f"{path}: the study file must be UTF-8 text.") from None
    if not isinstance(data, dict):
        raise WorkbenchError(f"{path}: a study file is a YAML mapping with at least `study: NAME`.")
    try:
        study = Study.model_validate(data)
    except ValidationError as exc:
        first = exc.errors()[0]
        loc = ".".join(str(p) for p in first["loc"]) or "(top level)"
        more = f" (and {exc.error_count() - 1} more problems)" if exc.error_count() > 1 else ""
        msg = first["msg"].removeprefix("Value error, ")
        raise WorkbenchError(f"{path}: {loc}: {msg}{more}. See schemas/study.schema.json.") from None
    return LoadedStudy(path.resolve(), study)


def resolve_file(ref: str, base_dir: Path) -> Path:
    """A dataset file: a path relative to the study, or package:DIST/PATH inside an installed package."""
    if ref.startswith("package:"):
        spec_ref = ref[len("package:") :]
        pkg, _, rel = spec_ref.partition("/")
        spec = importlib.util.find_spec(pkg) if pkg else None
        if spec is None or not spec.submodule_search_locations:
            raise WorkbenchError(f"{ref}: the Python package {pkg!r} is not installed: pip install {pkg}.")
        path = Path(list(spec.submodule_search_locations)[0]) / rel
        if not path.exists():
            raise WorkbenchError(f"{ref}: the package {pkg!r} has no file {rel!r}.")
        return path
    path = Path(ref)
    return path if path.is_absolute() else (base_dir / path)


def dataset_specs(name: str, src: DatasetSource, dimensions: dict) -> list[DatasetSpec]:
    """The DatasetSpecs a study's dataset entry reads from its file."""
    if src.preset:
        return preset_specs(
            src.preset, name, language=src.language, rescale=src.rescale, scale=dict(src.scale), decimal=src.decimal
        )
    ratings = []
    for dim, col in (src.ratings or {}).items():
        if isinstance(col, str):
            mean, sd, n, scale, rescale = col, None, None, None, None
        else:
            mean, sd, n, scale, rescale = col.mean, col.sd, col.n, col.scale, col.rescale
        if scale is None:
            scale = src.scale.get(dim) or (tuple(dimensions[dim].scale) if dim in dimensions else None)
        ratings.append(
            RatingColumns(
                dim,
                mean=(mean,),
                sd=(sd,) if sd else (),
                n=(n,) if n else (),
                scale=tuple(scale) if scale else None,
                rescale=rescale or src.rescale.get(dim),
            )
        )
    return [
        DatasetSpec(
            name,
            item=(src.item_column,),
            ratings=tuple(ratings),
            language=src.language,
            citation=src.citation,
            licence=src.licence,
            url=src.url,
            decimal=src.decimal,
        )
    ]


def separator_of(src: DatasetSource) -> str | None:
    return separator_char(src.separator) if src.separator else None
