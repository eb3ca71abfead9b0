"""SQLAlchemy models for the nouns of ARCHITECTURE.md.

One DeclarativeBase with a naming convention, so every constraint has a
stable name and batch migrations on SQLite can drop it later.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import (
    JSON,
    CheckConstraint,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Text,
    UniqueConstraint,
    func,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


def utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)
    type_annotation_map = {dict[str, Any]: JSON, list[Any]: JSON}


class StoreMeta(Base):
    """Key/value facts about the store; `generation` counts committed changes."""

    __tablename__ = "store_meta"
    key: Mapped[str] = mapped_column(String(64), primary_key=True)
    value: Mapped[str] = mapped_column(Text)


class Dimension(Base):
    __tablename__ = "dimensions"
    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(100), unique=True)
    scale_min: Mapped[float | None] = mapped_column(Float)
    scale_max: Mapped[float | None] = mapped_column(Float)
    scale_step: Mapped[float | None] = mapped_column(Float)
    labels: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    instructions: Mapped[str | None] = mapped_column(Text)

    __table_args__ = (
        CheckConstraint(
            "scale_min IS NULL OR scale_max IS NULL OR scale_min < scale_max",
            name="scale_order",
        ),
    )


class Item(Base):
    __tablename__ = "items"
    id: Mapped[int] = mapped_column(primary_key=True)
    text: Mapped[str] = mapped_column(String(500))
    language: Mapped[str] = mapped_column(String(16))
    __table_args__ = (UniqueConstraint("language", "text", name="uq_items_language_text"),)


class Dataset(Base):
    __tablename__ = "datasets"
    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(200), unique=True)
    citation: Mapped[str | None] = mapped_column(Text)
    licence: Mapped[str | None] = mapped_column(String(200))
    origin_file: Mapped[str | None] = mapped_column(Text)
    origin_url: Mapped[str | None] = mapped_column(Text)
    checksum: Mapped[str | None] = mapped_column(String(64))
    # hash of file checksum + import options: equal means "already imported"
    import_key: Mapped[str | None] = mapped_column(String(64))
    preset: Mapped[str | None] = mapped_column(String(100))
    language: Mapped[str] = mapped_column(String(16), default="en")
    # column map, scales, rescale factors, row counts: how the file was read
    details: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    imported_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), default=utcnow)

    raters: Mapped[list[Rater]] = relationship(back_populates="dataset")


class DatasetItem(Base):
    """An item a dataset lists without rating it: a word list's words (the study's ``word_lists:``).

    ``position`` is the word's row in the file, so the list reads back in its own order.
    """

    __tablename__ = "dataset_items"
    dataset_id: Mapped[int] = mapped_column(ForeignKey("datasets.id", ondelete="CASCADE"), primary_key=True)
    item_id: Mapped[int] = mapped_column(ForeignKey("items.id", ondelete="CASCADE"), primary_key=True, index=True)
    position: Mapped[int] = mapped_column(Integer)


class ItemAttribute(Base):
    """A fact a dataset gives about an item, from a column of its file: part of speech, condition, frequency band.

    Values are kept as the file writes them (text); item sets select on them (``where: {band: rare}``).
    """

    __tablename__ = "item_attributes"
    dataset_id: Mapped[int] = mapped_column(ForeignKey("datasets.id", ondelete="CASCADE"), primary_key=True)
    item_id: Mapped[int] = mapped_column(ForeignKey("items.id", ondelete="CASCADE"), primary_key=True)
    key: Mapped[str] = mapped_column(String(200), primary_key=True)
    value: Mapped[str] = mapped_column(Text)

    __table_args__ = (Index("ix_item_attributes_key_item", "key", "item_id"),)


class ItemSet(Base):
    __tablename__ = "item_sets"
    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(200), unique=True)
    description: Mapped[str | None] = mapped_column(Text)
    dataset_id: Mapped[int | None] = mapped_column(ForeignKey("datasets.id", ondelete="CASCADE"))
    # how the set was made (source datasets, sample size, seed): equal means "already made"
    definition: Mapped[dict[str, Any] | None] = mapped_column(JSON)


class ItemSetMember(Base):
    __tablename__ = "item_set_members"
    item_set_id: Mapped[int] = mapped_column(ForeignKey("item_sets.id", ondelete="CASCADE"), primary_key=True)
    item_id: Mapped[int] = mapped_column(ForeignKey("items.id", ondelete="CASCADE"), primary_key=True)


class Rater(Base):
    __tablename__ = "raters"
    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(200), unique=True)
    kind: Mapped[str] = mapped_column(String(16))
    config: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    config_hash: Mapped[str | None] = mapped_column(String(64), index=True)
    dataset_id: Mapped[int | None] = mapped_column(ForeignKey("datasets.id", ondelete="CASCADE"))
    created_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), default=utcnow)

    dataset: Mapped[Dataset | None] = relationship(back_populates="raters")

    __table_args__ = (CheckConstraint("kind IN ('norm', 'human', 'llm', 'model')", name="kind"),)


class Job(Base):
    __tablename__ = "jobs"
    id: Mapped[int] = mapped_column(primary_key=True)
    kind: Mapped[str] = mapped_column(String(32))
    status: Mapped[str] = mapped_column(String(16), default="running")
    rater_id: Mapped[int | None] = mapped_column(ForeignKey("raters.id", ondelete="SET NULL"))
    dataset_id: Mapped[int | None] = mapped_column(ForeignKey("datasets.id", ondelete="SET NULL"))
    config: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    counts: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    cost: Mapped[float | None] = mapped_column(Float)
    error: Mapped[str | None] = mapped_column(Text)
    # the id of the remote work this job waits on (an OpenAI batch), so a restart picks it up
    external_id: Mapped[str | None] = mapped_column(String(200), index=True)
    started_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    finished_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))


class Rating(Base):
    __tablename__ = "ratings"
    id: Mapped[int] = mapped_column(primary_key=True)
    item_id: Mapped[int] = mapped_column(ForeignKey("items.id", ondelete="CASCADE"))
    dimension_id: Mapped[int] = mapped_column(ForeignKey("dimensions.id", ondelete="CASCADE"))
    rater_id: Mapped[int] = mapped_column(ForeignKey("raters.id", ondelete="CASCADE"))
    replicate: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    value: Mapped[float | None] = mapped_column(Float)
    sd: Mapped[float | None] = mapped_column(Float)
    n: Mapped[int | None] = mapped_column(Integer)
    distribution: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    raw_answer: Mapped[str | None] = mapped_column(Text)
    # probability mass on scale-point tokens (expected read-out) or share of valid samples
    mass: Mapped[float | None] = mapped_column(Float)
    # why value is missing, or a warning such as low mass on scale tokens
    note: Mapped[str | None] = mapped_column(Text)
    job_id: Mapped[int | None] = mapped_column(ForeignKey("jobs.id", ondelete="SET NULL"))
    created_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True), server_default=func.current_timestamp())

    __table_args__ = (
        UniqueConstraint("rater_id", "dimension_id", "item_id", "replicate", name="uq_ratings_key"),
        Index("ix_ratings_item_dimension", "item_id", "dimension_id"),
    )


class Call(Base):
    """One request to a model server: what was sent, what came back, how long it took.

    Keys never reach this table: ``request`` is the JSON body, without headers.
    """

    __tablename__ = "calls"
    id: Mapped[int] = mapped_column(primary_key=True)
    job_id: Mapped[int] = mapped_column(ForeignKey("jobs.id", ondelete="CASCADE"), index=True)
    item_id: Mapped[int | None] = mapped_column(ForeignKey("items.id", ondelete="CASCADE"))
    attempt: Mapped[int] = mapped_column(Integer, default=1)
    status: Mapped[str] = mapped_column(String(16))  # ok | error
    http_status: Mapped[int | None] = mapped_column(Integer)
    error: Mapped[str | None] = mapped_column(Text)
    request: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    response: Mapped[str | None] = mapped_column(Text)  # the raw response body
    prompt_tokens: Mapped[int | None] = mapped_column(Integer)
    completion_tokens: Mapped[int | None] = mapped_column(Integer)
    latency_ms: Mapped[float | None] = mapped_column(Float)
    created_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True), server_default=func.current_timestamp())

    __table_args__ = (CheckConstraint("status IN ('ok', 'error')", name="status"),)


class Campaign(Base):
    """A human norming campaign in Label Studio: one project per list of items.

    ``dataset_id`` is the campaign's aggregate (mean, sd, n, known-ness per
    word after exclusions), written by each pull and usable as gold.
    """

    __tablename__ = "campaigns"
    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(200), unique=True)
    dimension_id: Mapped[int] = mapped_column(ForeignKey("dimensions.id", ondelete="CASCADE"))
    dataset_id: Mapped[int | None] = mapped_column(ForeignKey("datasets.id", ondelete="SET NULL"))
    server_url: Mapped[str] = mapped_column(Text)
    # the campaign's declaration as last pushed (items, raters per item, list size, controls, rules)
    config: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    created_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    pushed_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))
    pulled_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))

    lists: Mapped[list[CampaignList]] = relationship(back_populates="campaign", order_by="CampaignList.list_no")


class CampaignList(Base):
    """One list of a campaign: a Label Studio project that k annotators each work through."""

    __tablename__ = "campaign_lists"
    id: Mapped[int] = mapped_column(primary_key=True)
    campaign_id: Mapped[int] = mapped_column(ForeignKey("campaigns.id", ondelete="CASCADE"))
    list_no: Mapped[int] = mapped_column(Integer)
    project_id: Mapped[int] = mapped_column(Integer)
    # hash of the project's settings (label config, instructions, k) as last pushed
    settings_hash: Mapped[str | None] = mapped_column(String(64))
    # pull's state: the server time of the last pull, and what the project looked like then
    synced_at: Mapped[str | None] = mapped_column(String(64))
    fingerprint: Mapped[str | None] = mapped_column(String(200))

    campaign: Mapped[Campaign] = relationship(back_populates="lists")

    __table_args__ = (UniqueConstraint("campaign_id", "list_no", name="uq_campaign_lists_campaign_list"),)


class CampaignTask(Base):
    """The map between a Label Studio task and what it asks about: an item, a control item or a nonword."""

    __tablename__ = "campaign_tasks"
    id: Mapped[int] = mapped_column(primary_key=True)
    campaign_id: Mapped[int] = mapped_column(ForeignKey("campaigns.id", ondelete="CASCADE"))
    list_id: Mapped[int] = mapped_column(ForeignKey("campaign_lists.id", ondelete="CASCADE"), index=True)
    task_id: Mapped[int] = mapped_column(Integer)
    position: Mapped[int] = mapped_column(Integer)
    role: Mapped[str] = mapped_column(String(16))  # item | control | nonword
    item_id: Mapped[int | None] = mapped_column(ForeignKey("items.id", ondelete="CASCADE"))
    text: Mapped[str] = mapped_column(String(500))
    gold: Mapped[float | None] = mapped_column(Float)  # a control's known value
    # set when pull found the task gone from Label Studio (push recreates it)
    deleted: Mapped[bool] = mapped_column(default=False, server_default="0")

    __table_args__ = (
        UniqueConstraint("campaign_id", "task_id", name="uq_campaign_tasks_campaign_task"),
        CheckConstraint("role IN ('item', 'control', 'nonword')", name="role"),
    )


class CampaignAnnotation(Base):
    """One Label Studio annotation as pull last saw it (the sync state behind the ratings).

    ``annotator`` is a pseudonym (an HMAC of the server's user id with the
    study's secret); names and emails stay on the server.
    """

    __tablename__ = "campaign_annotations"
    id: Mapped[int] = mapped_column(primary_key=True)
    campaign_id: Mapped[int] = mapped_column(ForeignKey("campaigns.id", ondelete="CASCADE"))
    task_row_id: Mapped[int] = mapped_column(ForeignKey("campaign_tasks.id", ondelete="CASCADE"), index=True)
    annotation_id: Mapped[int] = mapped_column(Integer)
    annotator: Mapped[str] = mapped_column(String(64))
    value: Mapped[float | None] = mapped_column(Float)
    unknown: Mapped[bool] = mapped_column(default=False, server_default="0")
    lead_time: Mapped[float | None] = mapped_column(Float)
    # ok | skipped | off_scale | duplicate (an earlier annotation by the same annotator of the same item)
    status: Mapped[str] = mapped_column(String(16))
    note: Mapped[str | None] = mapped_column(Text)
    updated_at: Mapped[str | None] = mapped_column(String(64))

    __table_args__ = (
        UniqueConstraint("campaign_id", "annotation_id", name="uq_campaign_annotations_campaign_annotation"),
        CheckConstraint("status IN ('ok', 'skipped', 'off_scale', 'duplicate')", name="status"),
    )
