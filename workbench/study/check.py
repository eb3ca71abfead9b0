"""`workbench validate`: every check apply makes on the study's inputs, without a store.

The study file's models already refuse bad scales, names and options; this
reads each dataset file the way apply will (encoding, quotes, columns,
values, scales, items) and says what apply would import.
"""

from __future__ import annotations

from dataclasses import dataclass

from workbench.errors import WorkbenchError
from workbench.ingest.readers import read_table
from workbench.ingest.validate import build_norms
from workbench.study.load import LoadedStudy, dataset_specs, is_outside, resolve_file, separator_of


@dataclass
class DatasetCheck:
    name: str
    file: str
    items: int
    ratings: int
    rejected_rows: int
    outside: bool


def check_datasets(loaded: LoadedStudy) -> list[DatasetCheck]:
    """Read and validate every dataset file of the study; raise the first problem apply would meet."""
    study = loaded.study
    out = []
    for name, src in study.datasets.items():
        path = resolve_file(src.file, loaded.base_dir)
        if not path.exists():
            raise WorkbenchError(f"{loaded.path}: datasets.{name}.file: no file at {path}.")
        specs = dataset_specs(name, src, study.dimensions)
        raw = read_table(path, encoding=src.encoding, separator=separator_of(src), sheet=src.sheet, language=src.language)
        outside = not src.file.startswith("package:") and is_outside(path, loaded.base_dir)
        for spec in specs:
            table = build_norms(raw, spec, skip_invalid=src.skip_invalid)
            if not table.items:
                raise WorkbenchError(f"{path}: no usable rows for dataset {spec.name!r}: the file has a header but no data.")
            shown = str(path.resolve()) if outside else src.file
            out.append(DatasetCheck(spec.name, shown, len(table.items), table.n_ratings, len(table.rejected), outside))
    return out
