"""The tests, benchmarks, scripts and examples read only the repository's files: a clone has no ../shared."""

from __future__ import annotations

import re

from tests.conftest import ROOT

OUTSIDE = re.compile(r"ROOT\.parent\b|parents\[\d\]\s*/\s*[\"']shared|[\"'/]\.\./shared\b|/work/shared")


def test_no_code_reads_outside_the_repository():
    offenders = []
    for folder in ("bench", "tests", "scripts", "examples", "workbench"):
        for path in sorted((ROOT / folder).rglob("*")):
            if path.suffix not in (".py", ".sh", ".yaml", ".yml") or path.name == "test_repository_data.py":
                continue
            for number, line in enumerate(path.read_text(encoding="utf-8", errors="replace").splitlines(), 1):
                if OUTSIDE.search(line):
                    offenders.append(f"{path.relative_to(ROOT)}:{number}: {line.strip()}")
    assert offenders == []
