from workbench.store.engine import bump_generation, connect, generation, redact_url, resolve_url, store_id, store_version
from workbench.store.models import (
    Base,
    Call,
    Dataset,
    Dimension,
    Item,
    ItemSet,
    ItemSetMember,
    Job,
    Rater,
    Rating,
)

__all__ = [
    "Base",
    "Call",
    "Dataset",
    "Dimension",
    "Item",
    "ItemSet",
    "ItemSetMember",
    "Job",
    "Rater",
    "Rating",
    "bump_generation",
    "connect",
    "generation",
    "redact_url",
    "resolve_url",
    "store_id",
    "store_version",
]
