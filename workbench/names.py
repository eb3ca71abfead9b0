"""The name a study gives a resource (dimension, dataset, item set, split, rater, fine-tune, ...): one pattern.

A name starts with a letter or digit and goes on with letters, digits, ``_``,
``.`` and ``-``: it is safe in a file name, a URL and a SQL identifier quoted
or not. Every field that names a resource uses :data:`NAME_PATTERN` (or
:data:`Name`, which also caps the length).
"""

from __future__ import annotations

from typing import Annotated

from pydantic import Field

NAME_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.\-]*$"
Name = Annotated[str, Field(pattern=NAME_PATTERN, max_length=100)]
