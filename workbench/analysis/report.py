"""Validation reports: how close each rater comes to the gold norms, and to the human ceiling.

The entry points. The work is in three modules, one job each:

- :mod:`workbench.analysis.collect`: the store (a Session) -> one dimension's
  items x raters table, with each column's own scale and its map onto the
  dimension's scale;
- :mod:`workbench.analysis.analyse`: that table -> a :class:`DimensionReport`
  (numbers only, deterministic for a seed);
- :mod:`workbench.analysis.write`: the report -> HTML, Markdown or JSON files,
  with the figures.

`build_report` collects and analyses every dimension asked for. Importing
this module is cheap (no numpy, pandas, scipy or matplotlib): they load when
a report is built or written.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from workbench.analysis.write import FORMATS, make_plots, plot_names, write_report
from workbench.errors import WorkbenchError

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

    from workbench.analysis.collect import DimensionData
    from workbench.analysis.report_model import Report

__all__ = ["FORMATS", "DimensionData", "analyse", "build_report", "collect", "make_plots", "plot_names", "write_report"]
_LAZY = {"collect": "collect", "DimensionData": "collect", "analyse": "analyse"}


def __getattr__(name: str):
    """`collect`, `DimensionData` and `analyse`, imported (with pandas and scipy) on first use."""
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(f"workbench.analysis.{_LAZY[name]}"), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def build_report(
    session: Session,
    *,
    dimension: str | None = None,
    dimensions: list[str] | None = None,
    gold: list[str] | None = None,
    raters: list[str] | None = None,
    items: str | None = None,
    n_boot: int = 1000,
    seed: int = 0,
    ci: float = 0.95,
    calibrate: dict[str, str] | None = None,
    intervals: dict | None = None,
    ppi: dict | None = None,
    title: str = "Validation report",
) -> tuple[Report, list[DimensionData]]:
    """The report over every dimension with something to report (or the one asked for), and its data.

    dimensions: the study's dimensions (the others in the store, such as the
    eight more a Glasgow import brings, are left out). Without `dimension`, a
    dimension is reported when it has a rater, or two gold datasets to set
    against each other: one gold dataset alone has nothing to compare.
    The report opens with its methods section (workbench.analysis.methods).
    """
    from workbench import __version__
    from workbench.analysis.analyse import analyse
    from workbench.analysis.collect import collect, known_raters
    from workbench.analysis.collect import dimensions as all_dimensions
    from workbench.analysis.methods import collect_methods
    from workbench.analysis.report_model import Report
    from workbench.analysis.write import unique_plot_names
    from workbench.store.itemsets import item_texts, resolve_items

    targets = sorted(item_texts(session, resolve_items(session, items)).values()) if items else None
    datas, lonely = [], []
    for dim in all_dimensions(session, dimension):
        if dimension is None and dimensions is not None and dim.name not in dimensions:
            continue
        data = collect(session, dim, gold=gold if dimension or gold is None else known_raters(session, dim, gold),
                       raters=raters if dimension or raters is None else known_raters(session, dim, raters), items=items)  # fmt: skip
        if data is None or not (data.gold or data.raters):
            continue
        (datas if dimension or data.raters or len(data.gold) > 1 else lonely).append(data)
    datas = datas or lonely  # a store with one norm and nothing else: report that norm rather than nothing
    parts = [analyse(d, n_boot=n_boot, seed=seed, ci=ci, session=session, calibrate=calibrate, intervals=intervals, targets=targets,
                     ppi=ppi)
             for d in datas]  # fmt: skip
    if not parts:
        raise WorkbenchError("nothing to report: the store has no ratings for the dimensions, raters and items asked for.")
    unique_plot_names(parts)
    methods = collect_methods(
        session,
        dimensions=[p.dimension for p in parts],
        raters=[r for p in parts for r in p.raters],
        gold=[g for p in parts for g in p.gold],
    )
    return Report(
        title=title, workbench=__version__, methods=methods, seed=seed, n_boot=n_boot, ci=ci, items=items, dimensions=parts
    ), datas
