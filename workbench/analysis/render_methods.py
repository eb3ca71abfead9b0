"""The methods section and the coverage of a report, as HTML and as Markdown.

Follows the rules of workbench.analysis.render (numbers as render_format writes them): every number sits in an
element with ``data-key`` (its dotted path in the JSON report) and reads as
``format_number`` writes it.
"""

from __future__ import annotations

from typing import Any

from workbench.analysis.render_format import MISSING, _e, _md, _md_table, _num, _txt, format_number
from workbench.analysis.report_model import Coverage, DimensionReport, Methods, RaterMethod

COVERAGE_OPEN = 40  # more words without gold than this: their table is folded away


def _span(value: Any, key: str) -> str:
    return f'<span data-key="{_e(key)}">{_e(format_number(value, key))}</span>'


def _row(label: str, cell: str) -> str:
    return f'<tr><th scope="row">{_e(label)}</th>{cell}</tr>'


def _text_cell(text: str | None) -> str:
    return _txt(text if text else MISSING)


def _rater_rows(r: RaterMethod, key: str) -> list[tuple[str, str]]:
    """(label, cell HTML) of one rater."""
    rows = [
        ("Kind", _text_cell(r.kind)),
        ("Backend", _text_cell(r.backend)),
        ("Dimension", _text_cell(r.dimension)),
        ("Model", _text_cell(r.model)),
        ("Model version (as the server reported it)", _text_cell(r.model_version)),
        ("Weights", _text_cell(r.weights)),
        ("Read-out", _text_cell(r.readout)),
        ("Few-shot examples", _text_cell(r.few_shot or "none")),
        ("Trained on", _text_cell(r.trained_on or "nothing (not trained on any item)")),
        ("Ratings", _num(r.rated, f"{key}.rated")),
        ("Jobs", _num(r.jobs, f"{key}.jobs")),
        ("Calls recorded", _num(r.calls, f"{key}.calls")),
        ("First run", _text_cell(r.first_run)),
        ("Last run", _text_cell(r.last_run)),
    ]
    for name, value in r.options.items():
        rows.append((name, f'<td class="answer">{_e(value)}</td>'))
    return rows


def methods_html(m: Methods) -> str:
    """The methods section: study, dimensions, datasets, raters (with their prompts), campaigns."""
    out = ['<section class="methods" id="methods"><h2>Methods</h2>', '<p class="meta">']
    out.append(f"<span>study {_e(m.study or 'not recorded (run workbench apply)')}</span>")
    if m.title:
        out.append(f"<span>{_e(m.title)}</span>")
    out.append(f"<span>report of {_e(m.date)}</span><span>workbench {_e(m.workbench)}</span></p>")
    out.append(f'<p class="lead">{_e(m.cite)}</p>')
    if m.dimensions:
        out.append("<h3>Dimensions</h3>")
        body = []
        for i, d in enumerate(m.dimensions):
            key = f"methods.dimensions.{i}"
            labels = ", ".join(f"{k} = {v}" for k, v in d.labels.items()) or MISSING
            instructions = (f"<details><summary>instructions</summary><p>{_e(d.instructions)}</p></details>"
                            if d.instructions else MISSING)  # fmt: skip
            body.append(f'<tr>{_txt(d.name, "name")}{_num(d.scale, key + ".scale")}{_num(d.step, key + ".step")}'
                        f"{_txt(labels)}<td>{instructions}</td></tr>")  # fmt: skip
        out.append('<div class="scroll"><table><thead><tr><th scope="col">Dimension</th><th scope="col">Scale</th>'
                   '<th scope="col">Step</th><th scope="col">Labels</th><th scope="col">Instructions</th></tr></thead>'
                   f"<tbody>{''.join(body)}</tbody></table></div>")  # fmt: skip
    if m.datasets:
        out.append("<h3>Datasets</h3>")
        body = []
        for i, d in enumerate(m.datasets):
            key = f"methods.datasets.{i}"
            source = d.url or d.file or MISSING
            body.append(
                f"<tr>{_txt(d.name, 'name')}{_txt(d.role)}{_text_cell(d.citation)}{_text_cell(d.licence)}{_txt(source)}"
                f"{_num(d.items, key + '.items')}{_txt(', '.join(d.dimensions) or MISSING)}{_text_cell(d.imported)}"
                f'<td class="answer">{_e((d.checksum or MISSING)[:16])}</td></tr>'
            )
        heads = ("Dataset", "Role", "Citation", "Licence", "Source", "Items", "Dimensions", "Imported", "sha256 (first 16)")
        out.append('<div class="scroll"><table><thead><tr>' + "".join(f'<th scope="col">{h}</th>' for h in heads)
                   + f"</tr></thead><tbody>{''.join(body)}</tbody></table></div>")  # fmt: skip
        missing = [d.name for d in m.datasets if d.role == "gold" and not (d.citation and d.licence)]
        if missing:
            out.append(f'<p class="missing">No citation or licence recorded for {_e(", ".join(missing))}: '
                       "give them citation: and licence: in the study file and apply again.</p>")  # fmt: skip
    if m.raters:
        out.append("<h3>Raters</h3>")
        for i, r in enumerate(m.raters):
            key = f"methods.raters.{i}"
            rows = "".join(_row(label, cell) for label, cell in _rater_rows(r, key))
            out.append(f'<h4>{_e(r.name)}</h4><div class="scroll"><table><tbody>{rows}</tbody></table></div>')
            if r.prompt:
                out.append(f'<details open><summary>Prompt, filled in for “{_e(r.example_word or "")}”</summary>'
                           f'<pre class="prompt">{_e(r.prompt)}</pre></details>')  # fmt: skip
    if m.campaigns:
        out.append("<h3>Human norming campaigns</h3>")
        for i, c in enumerate(m.campaigns):
            key = f"methods.campaigns.{i}"
            rows = [
                ("Dimension", _text_cell(c.dimension)),
                ("Items", _text_cell(c.items)),
                ("Words", _num(c.n_items, key + ".n_items")),
                ("Annotators per word (k)", _num(c.raters_per_item, key + ".raters_per_item")),
                ("Words per list", _num(c.list_size, key + ".list_size")),
                ("Lists", _num(c.lists, key + ".lists")),
                ("Control items", _text_cell(c.controls or "none")),
                ("Exclusion rules", _text_cell(c.exclusions or "none")),
                ("Pre-annotations", _text_cell(c.pre_annotations or "none")),
                ("Annotators", _num(c.annotators, key + ".annotators")),
                ("Excluded annotators", _num(c.excluded, key + ".excluded")),
                ("Annotations pulled", _num(c.annotations, key + ".annotations")),
                ("Pushed", _text_cell(c.pushed)),
                ("Last pulled", _text_cell(c.pulled)),
            ]
            out.append(f'<h4>{_e(c.name)}</h4><div class="scroll"><table><tbody>'
                       + "".join(_row(label, cell) for label, cell in rows) + "</tbody></table></div>")  # fmt: skip
    out.append("</section>")
    return "".join(out)


def methods_markdown(m: Methods) -> str:
    out = ["## Methods\n"]
    meta = [f"study {_md(m.study or 'not recorded (run workbench apply)')}"]
    if m.title:
        meta.append(_md(m.title))
    meta += [f"report of {m.date}", f"workbench {_md(m.workbench)}"]
    out.append(" · ".join(meta) + "\n")
    out.append(_md(m.cite) + "\n")
    if m.dimensions:
        out.append("### Dimensions\n")
        rows = [[_md(d.name), format_number(d.scale, f"methods.dimensions.{i}.scale"), format_number(d.step, f"methods.dimensions.{i}.step"),
                 _md(", ".join(f"{k} = {v}" for k, v in d.labels.items()) or MISSING), _md(d.instructions or MISSING)]
                for i, d in enumerate(m.dimensions)]  # fmt: skip
        out.append(_md_table(["Dimension", "Scale", "Step", "Labels", "Instructions"], rows, [False, True, True, False, False]))
    if m.datasets:
        out.append("### Datasets\n")
        rows = [[_md(d.name), _md(d.role), _md(d.citation or MISSING), _md(d.licence or MISSING), _md(d.url or d.file or MISSING),
                 format_number(d.items, f"methods.datasets.{i}.items"), _md(", ".join(d.dimensions) or MISSING)]
                for i, d in enumerate(m.datasets)]  # fmt: skip
        out.append(_md_table(["Dataset", "Role", "Citation", "Licence", "Source", "Items", "Dimensions"], rows,
                             [False] * 5 + [True, False]))  # fmt: skip
    if m.raters:
        out.append("### Raters\n")
        for i, r in enumerate(m.raters):
            key = f"methods.raters.{i}"
            rows = [
                ["Kind", _md(r.kind)], ["Backend", _md(r.backend or MISSING)], ["Dimension", _md(r.dimension or MISSING)],
                ["Model", _md(r.model or MISSING)], ["Model version", _md(r.model_version or MISSING)],
                ["Weights", _md(r.weights or MISSING)], ["Read-out", _md(r.readout or MISSING)],
                ["Few-shot examples", _md(r.few_shot or "none")], ["Trained on", _md(r.trained_on or "nothing")],
                ["Ratings", format_number(r.rated, key + ".rated")], ["Jobs", format_number(r.jobs, key + ".jobs")],
                ["Calls recorded", format_number(r.calls, key + ".calls")], ["First run", _md(r.first_run or MISSING)],
                ["Last run", _md(r.last_run or MISSING)],
            ]  # fmt: skip
            rows += [[_md(k), f"<code>{_md(v)}</code>"] for k, v in r.options.items()]
            out.append(f"#### {_md(r.name)}\n")
            out.append(_md_table(["", ""], rows, [False, False]))
            if r.prompt:
                fence = "~" * max(4, _longest_run(r.prompt, "~") + 1)
                out.append(f"Prompt, filled in for “{_md(r.example_word or '')}”:\n\n{fence}text\n{r.prompt}\n{fence}\n")
    if m.campaigns:
        out.append("### Human norming campaigns\n")
        for i, c in enumerate(m.campaigns):
            key = f"methods.campaigns.{i}"
            rows = [
                ["Dimension", _md(c.dimension or MISSING)], ["Items", _md(c.items or MISSING)],
                ["Words", format_number(c.n_items, key + ".n_items")],
                ["Annotators per word (k)", format_number(c.raters_per_item, key + ".raters_per_item")],
                ["Words per list", format_number(c.list_size, key + ".list_size")], ["Lists", format_number(c.lists, key + ".lists")],
                ["Control items", _md(c.controls or "none")], ["Exclusion rules", _md(c.exclusions or "none")],
                ["Pre-annotations", _md(c.pre_annotations or "none")], ["Annotators", format_number(c.annotators, key + ".annotators")],
                ["Excluded annotators", format_number(c.excluded, key + ".excluded")],
                ["Annotations pulled", format_number(c.annotations, key + ".annotations")],
                ["Pushed", _md(c.pushed or MISSING)], ["Last pulled", _md(c.pulled or MISSING)],
            ]  # fmt: skip
            out.append(f"#### {_md(c.name)}\n")
            out.append(_md_table(["", ""], rows, [False, False]))
    return "\n".join(out)


def _longest_run(text: str, char: str) -> int:
    best = run = 0
    for ch in text:
        run = run + 1 if ch == char else 0
        best = max(best, run)
    return best


def coverage_text(c: Coverage) -> str:
    if not c.without_gold:
        return f"All {c.items:,} words have a gold rating."
    return (f"{c.items:,} words: {c.with_gold:,} with a gold rating, {c.without_gold:,} without. The agreement figures "
            "use only words with gold; the raters' values on the others are listed here.")  # fmt: skip


def coverage_html(dim: DimensionReport, base: str) -> str:
    c = dim.coverage
    if c is None:
        return ""
    key = f"{base}.coverage"
    out = [
        "<h3>Coverage</h3>",
        f'<p class="lead">{_span(c.items, key + ".items")} words: {_span(c.with_gold, key + ".with_gold")} with a gold rating, '
        f"{_span(c.without_gold, key + '.without_gold')} without."
        + (" The agreement figures use only words with gold; each rater's values on the others (as stored) follow." if c.rows else "")
        + "</p>",
    ]
    if c.rows:
        head = '<th scope="col">Word without gold</th>' + "".join(f'<th scope="col">{_e(r)}</th>' for r in c.raters)
        rated = '<tr><th scope="row">words rated</th>' + "".join(_num(n, f"{key}.rated.{j}") for j, n in enumerate(c.rated)) + "</tr>"
        body = "".join(
            f"<tr>{_txt(row.item, 'name')}" + "".join(_num(v, f"{key}.rows.{i}.values.{j}") for j, v in enumerate(row.values)) + "</tr>"
            for i, row in enumerate(c.rows)
        )
        table = f'<div class="scroll"><table><thead><tr>{head}</tr></thead><tbody>{body}</tbody><tfoot>{rated}</tfoot></table></div>'
        if len(c.rows) > COVERAGE_OPEN:
            table = f"<details><summary>{len(c.rows):,} words without gold</summary>{table}</details>"
        out.append(table)
    return "".join(out)


def coverage_markdown(dim: DimensionReport, base: str) -> str:
    c = dim.coverage
    if c is None:
        return ""
    key = f"{base}.coverage"
    out = ["### Coverage\n", _md(coverage_text(c)) + "\n"]
    if c.rows:
        rows = [[_md(row.item)] + [format_number(v, f"{key}.rows.{i}.values.{j}") for j, v in enumerate(row.values)]
                for i, row in enumerate(c.rows)]  # fmt: skip
        rows.append(["*words rated*"] + [format_number(n, f"{key}.rated.{j}") for j, n in enumerate(c.rated)])
        out.append(_md_table(["Word without gold"] + [_md(r) for r in c.raters], rows, [False] + [True] * len(c.raters)))
    return "\n".join(out)


def ceiling_note(dim: DimensionReport) -> str | None:
    """Why the human ceiling is empty, when it is (None when it has rows)."""
    if dim.ceiling:
        return None
    if not dim.gold:
        return None
    extra = " or several annotators' individual ratings (see Reliability)" if dim.reliability is not None else ""
    return (f"Only one gold dataset ({dim.gold[0]}) rates this dimension here, so there is no human ceiling: it needs two "
            f"norm sets that rate the same words{extra}. Import a second norm for the dimension to get one.")  # fmt: skip


def no_gold_note(dim: DimensionReport) -> str:
    return ("No gold dataset rates this dimension's words here: there is nothing to set the raters against. "
            "Their values are listed under Coverage.")  # fmt: skip
