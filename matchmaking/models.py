"""The data model: reference tables, firms and their sites, users, listings, matches,
exchanges, the notification outbox and the audit log (SQLAlchemy 2.x, typed)."""

from __future__ import annotations

import enum
import secrets
from datetime import UTC, date, datetime
from typing import Annotated, Any

from sqlalchemy import (
    JSON,
    Boolean,
    CheckConstraint,
    Date,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    Numeric,
    String,
    Text,
    UniqueConstraint,
    func,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship
from sqlalchemy.types import TypeDecorator


def utcnow() -> datetime:
    return datetime.now(UTC)


PUBLIC_ID_LENGTH = 16
PUBLIC_ID_ALPHABET = "abcdefghijkmnopqrstuvwxyz23456789"  # no 0/o, 1/l: an id read aloud stays one id


def new_public_id() -> str:
    """The id a listing or a match is known by outside the database (URLs, API, e-mails, webhooks):
    random, so that it tells neither when it was made nor what was made next to it (about 80 bits)."""
    return "".join(secrets.choice(PUBLIC_ID_ALPHABET) for _ in range(PUBLIC_ID_LENGTH))


class UTCDateTime(TypeDecorator[datetime]):
    """Timezone-aware datetimes on every backend (SQLite forgets the zone on the way back)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is not None and value.tzinfo is None:
            value = value.replace(tzinfo=UTC)
        return value

    def process_result_value(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is not None and value.tzinfo is None:
            value = value.replace(tzinfo=UTC)
        return value


JsonType = JSON().with_variant(JSONB(), "postgresql")

intpk = Annotated[int, mapped_column(Integer, primary_key=True)]
created = Annotated[datetime, mapped_column(UTCDateTime, default=utcnow, server_default=func.now())]
str200 = Annotated[str, mapped_column(String(200))]
# The internal integer id stays internal; this is the one shown (see new_public_id).
opaque_id = Annotated[str, mapped_column(String(PUBLIC_ID_LENGTH), unique=True, index=True, default=new_public_id)]


class Base(DeclarativeBase):
    metadata = MetaData(
        naming_convention={
            "ix": "ix_%(column_0_label)s",
            "uq": "uq_%(table_name)s_%(column_0_name)s",
            "ck": "ck_%(table_name)s_%(constraint_name)s",
            "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
            "pk": "pk_%(table_name)s",
        }
    )


class Role(enum.StrEnum):
    member = "member"
    facilitator = "facilitator"
    analyst = "analyst"
    admin = "admin"


class Kind(enum.StrEnum):
    offer = "offer"
    need = "need"


class Unit(enum.StrEnum):
    t = "t"
    kg = "kg"
    m3 = "m3"
    L = "L"
    unit = "unit"


class Frequency(enum.StrEnum):
    once = "once"
    weekly = "weekly"
    monthly = "monthly"
    quarterly = "quarterly"
    yearly = "yearly"


class ListingStatus(enum.StrEnum):
    draft = "draft"
    published = "published"
    paused = "paused"
    closed = "closed"
    expired = "expired"


class Decision(enum.StrEnum):
    pending = "pending"
    interested = "interested"
    accepted = "accepted"
    declined = "declined"


class MatchStatus(enum.StrEnum):
    proposed = "proposed"  # found by the engine, nobody has acted yet
    interested = "interested"  # at least one side expressed interest
    accepted = "accepted"  # both sides accepted: identities are revealed
    declined = "declined"  # one side declined
    stale = "stale"  # a listing changed and the pair no longer scores


class NotifyMode(enum.StrEnum):
    instant = "instant"
    daily = "daily"
    weekly = "weekly"
    off = "off"


class FollowUp(enum.StrEnum):
    """Where the CCMA facilitators stand with a match."""

    proposed = "proposed"
    contacted = "contacted"
    trial = "trial"
    exchanged = "exchanged"
    recurring = "recurring"
    dropped = "dropped"


class ClaimStatus(enum.StrEnum):
    pending = "pending"
    accepted = "accepted"
    rejected = "rejected"


class OutboxStatus(enum.StrEnum):
    pending = "pending"
    done = "done"
    failed = "failed"


def _enum(cls: type[enum.StrEnum], name: str) -> Any:
    from sqlalchemy import Enum

    return Enum(
        cls,
        name=name,
        native_enum=False,
        create_constraint=True,
        length=16,
        values_callable=lambda members: [m.value for m in members],
        validate_strings=True,
    )


# --- reference data (seeded from seed/) -------------------------------------------------------


class Commune(Base):
    __tablename__ = "commune"

    insee: Mapped[str] = mapped_column(String(5), primary_key=True)
    name: Mapped[str] = mapped_column(String(100), index=True)
    postal_codes: Mapped[str] = mapped_column(String(100))  # space-separated
    lat: Mapped[float] = mapped_column(Float)
    lon: Mapped[float] = mapped_column(Float)
    department: Mapped[str] = mapped_column(String(3))
    population: Mapped[int | None]
    ccma: Mapped[bool] = mapped_column(Boolean, default=False)


class MaterialFamily(Base):
    __tablename__ = "material_family"

    slug: Mapped[str] = mapped_column(String(40), primary_key=True)
    label_fr: Mapped[str] = mapped_column(String(100))
    label_en: Mapped[str] = mapped_column(String(100))
    ewc_stat_code: Mapped[str] = mapped_column(String(40))
    ewc_stat_label_en: Mapped[str] = mapped_column(String(200))
    density_t_per_m3: Mapped[float | None]


class LowCode(Base):
    """One node of the EU List of Waste: chapter, subchapter or six-digit entry."""

    __tablename__ = "low_code"

    code: Mapped[str] = mapped_column(String(8), primary_key=True)  # "16 01 03"
    level: Mapped[str] = mapped_column(String(10))
    chapter: Mapped[str] = mapped_column(String(2))
    subchapter: Mapped[str | None] = mapped_column(String(5))
    hazardous: Mapped[bool] = mapped_column(Boolean, default=False)
    label_fr: Mapped[str] = mapped_column(Text)
    label_en: Mapped[str] = mapped_column(Text)
    family_slug: Mapped[str | None] = mapped_column(ForeignKey("material_family.slug"))


# --- firms, sites, users --------------------------------------------------------------------


class Firm(Base):
    __tablename__ = "firm"

    id: Mapped[intpk]
    name: Mapped[str200]
    siret: Mapped[str] = mapped_column(String(14), unique=True)
    naf_code: Mapped[str | None] = mapped_column(String(6))  # "16.10A"
    contact_name: Mapped[str | None] = mapped_column(String(120))
    contact_email: Mapped[str | None] = mapped_column(String(254))
    contact_phone: Mapped[str | None] = mapped_column(String(30))
    demo: Mapped[bool] = mapped_column(Boolean, default=False)  # part of the fictitious demo territory
    created_at: Mapped[created]
    # A CCMA facilitator checked that the firm is who it says (services/verification.py); who did
    # it is in the audit log.
    verified_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    sites: Mapped[list[Site]] = relationship(back_populates="firm", order_by="Site.id")
    users: Mapped[list[User]] = relationship(back_populates="firm")

    @property
    def verified(self) -> bool:
        return self.verified_at is not None

    @property
    def main_site(self) -> Site | None:
        return next((s for s in self.sites if s.is_main), self.sites[0] if self.sites else None)


class Site(Base):
    __tablename__ = "site"

    id: Mapped[intpk]
    firm_id: Mapped[int] = mapped_column(ForeignKey("firm.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(String(120))
    commune_insee: Mapped[str] = mapped_column(ForeignKey("commune.insee"))
    address: Mapped[str | None] = mapped_column(String(250))
    lat: Mapped[float] = mapped_column(Float)
    lon: Mapped[float] = mapped_column(Float)
    is_main: Mapped[bool] = mapped_column(Boolean, default=False)

    firm: Mapped[Firm] = relationship(back_populates="sites")
    commune: Mapped[Commune] = relationship()


class User(Base):
    __tablename__ = "user_account"  # "user" is reserved in PostgreSQL

    id: Mapped[intpk]
    firm_id: Mapped[int | None] = mapped_column(ForeignKey("firm.id", ondelete="CASCADE"), index=True)
    email: Mapped[str] = mapped_column(String(254), unique=True)  # stored lower-cased
    password_hash: Mapped[str] = mapped_column(String(200))
    name: Mapped[str | None] = mapped_column(String(120))
    role: Mapped[Role] = mapped_column(_enum(Role, "role"), default=Role.member)
    locale: Mapped[str] = mapped_column(String(5), default="fr")
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[created]
    # When the owner opened the confirmation link. Accounts made by the CCMA (command line, demo)
    # are confirmed when created; only self-registration starts unconfirmed (services/verification.py).
    email_confirmed_at: Mapped[datetime | None] = mapped_column(UTCDateTime, default=utcnow)
    # Notification preferences: how often, from which score, through which channels.
    notify_mode: Mapped[NotifyMode] = mapped_column(_enum(NotifyMode, "notify_mode"), default=NotifyMode.instant)
    notify_min_score: Mapped[float] = mapped_column(Float, default=0.5)
    notify_email: Mapped[bool] = mapped_column(Boolean, default=True)
    notify_webhook: Mapped[bool] = mapped_column(Boolean, default=True)

    firm: Mapped[Firm | None] = relationship(back_populates="users")


class UserSession(Base):
    """A signed-in browser; the cookie holds only the id, so signing out ends it on the server."""

    __tablename__ = "user_session"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)  # sha256 of the cookie secret
    user_id: Mapped[int] = mapped_column(ForeignKey("user_account.id", ondelete="CASCADE"), index=True)
    created_at: Mapped[created]
    last_seen_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    ip: Mapped[str | None] = mapped_column(String(45))
    user_agent: Mapped[str | None] = mapped_column(String(200))

    user: Mapped[User] = relationship()


class ApiToken(Base):
    """A bearer token for the JSON API; only its hash is stored."""

    __tablename__ = "api_token"

    id: Mapped[intpk]
    user_id: Mapped[int] = mapped_column(ForeignKey("user_account.id", ondelete="CASCADE"), index=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    name: Mapped[str | None] = mapped_column(String(80))
    created_at: Mapped[created]
    last_used_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    user: Mapped[User] = relationship()


class PasswordReset(Base):
    __tablename__ = "password_reset"

    id: Mapped[intpk]
    user_id: Mapped[int] = mapped_column(ForeignKey("user_account.id", ondelete="CASCADE"), index=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[created]
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime)
    used_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    user: Mapped[User] = relationship()


class SignInRecord(Base):
    """What one address did lately when signing in to one account (services/sign_in.py).

    Keyed on the e-mail address typed (its sha256, so a mistyped address is not kept, and an unknown
    account is treated like a real one) and the client's address (IPv6 folded to its /64).
    """

    __tablename__ = "sign_in_record"

    account: Mapped[str] = mapped_column(String(64), primary_key=True)
    address: Mapped[str] = mapped_column(String(45), primary_key=True)
    failures: Mapped[int] = mapped_column(Integer, default=0)  # wrong passwords in a row
    last_failure_at: Mapped[datetime | None] = mapped_column(UTCDateTime, index=True)
    wait_until: Mapped[datetime | None] = mapped_column(UTCDateTime)  # no attempt is checked before this
    known_until: Mapped[datetime | None] = mapped_column(UTCDateTime)  # signed in from here: trusted till then


# --- listings, matches, exchanges -------------------------------------------------------------


class Listing(Base):
    __tablename__ = "listing"
    __table_args__ = (
        UniqueConstraint("firm_id", "reference"),
        CheckConstraint("quantity > 0", name="quantity_positive"),
        CheckConstraint("radius_km IS NULL OR radius_km > 0", name="radius_positive"),
        Index("ix_listing_kind_status", "kind", "status"),
        Index("ix_listing_updated_at", "updated_at"),  # what changed since: each process's index asks
    )

    id: Mapped[intpk]
    public_id: Mapped[opaque_id]
    firm_id: Mapped[int] = mapped_column(ForeignKey("firm.id", ondelete="CASCADE"), index=True)
    site_id: Mapped[int] = mapped_column(ForeignKey("site.id"))
    reference: Mapped[str | None] = mapped_column(String(64))  # the firm's own reference (imports)
    kind: Mapped[Kind] = mapped_column(_enum(Kind, "kind"))
    title: Mapped[str200]
    description: Mapped[str] = mapped_column(Text, default="")
    low_code: Mapped[str | None] = mapped_column(ForeignKey("low_code.code"))
    material_family: Mapped[str | None] = mapped_column(ForeignKey("material_family.slug"))
    hazardous: Mapped[bool] = mapped_column(Boolean, default=False)
    accepts_hazardous: Mapped[bool] = mapped_column(Boolean, default=False)  # needs only
    quantity: Mapped[float] = mapped_column(Float)
    unit: Mapped[Unit] = mapped_column(_enum(Unit, "unit"))
    frequency: Mapped[Frequency] = mapped_column(_enum(Frequency, "frequency"))
    lot_tonnes: Mapped[float | None]  # one occurrence, in tonnes, when derivable
    annual_tonnes: Mapped[float | None]
    radius_km: Mapped[float | None]  # needs: how far the buyer will fetch
    available_from: Mapped[date | None] = mapped_column(Date)
    available_until: Mapped[date | None] = mapped_column(Date)
    anonymous: Mapped[bool] = mapped_column(Boolean, default=False)
    price_eur_per_unit: Mapped[float | None] = mapped_column(Numeric(12, 2, asdecimal=False))
    status: Mapped[ListingStatus] = mapped_column(
        _enum(ListingStatus, "listing_status"), default=ListingStatus.draft
    )
    created_at: Mapped[created]
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)
    published_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    confirmed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)  # last time the firm said "still valid"
    reminded_at: Mapped[datetime | None] = mapped_column(UTCDateTime)  # last "is this still valid?" reminder

    firm: Mapped[Firm] = relationship()
    site: Mapped[Site] = relationship()
    family: Mapped[MaterialFamily | None] = relationship()
    low: Mapped[LowCode | None] = relationship()


class Match(Base):
    """One offer/need pair found by the engine; one row per pair, updated in place."""

    __tablename__ = "match"
    __table_args__ = (
        UniqueConstraint("offer_id", "need_id"),
        CheckConstraint("score >= 0 AND score <= 1", name="score_range"),
    )

    id: Mapped[intpk]
    public_id: Mapped[opaque_id]
    offer_id: Mapped[int] = mapped_column(ForeignKey("listing.id", ondelete="CASCADE"), index=True)
    need_id: Mapped[int] = mapped_column(ForeignKey("listing.id", ondelete="CASCADE"), index=True)
    score: Mapped[float] = mapped_column(Float)
    distance_km: Mapped[float | None]
    explanation: Mapped[dict[str, Any]] = mapped_column(JsonType, default=dict)
    offer_decision: Mapped[Decision] = mapped_column(_enum(Decision, "offer_decision"), default=Decision.pending)
    need_decision: Mapped[Decision] = mapped_column(_enum(Decision, "need_decision"), default=Decision.pending)
    status: Mapped[MatchStatus] = mapped_column(_enum(MatchStatus, "match_status"), default=MatchStatus.proposed)
    created_at: Mapped[created]
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)
    accepted_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # Facilitation by CCMA staff.
    follow_up: Mapped[FollowUp] = mapped_column(_enum(FollowUp, "follow_up"), default=FollowUp.proposed)
    drop_reason: Mapped[str | None] = mapped_column(String(300))
    facilitator_id: Mapped[int | None] = mapped_column(ForeignKey("user_account.id", ondelete="SET NULL"))
    introduced_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # What the first firm to decide was shown (a rematch never rewrites it), the model that scored
    # it, and the one-click reason of a decline (``services.decisions.DECLINE_REASONS``).
    decided_score: Mapped[float | None]
    decided_explanation: Mapped[dict[str, Any] | None] = mapped_column(JsonType)
    model_version: Mapped[str | None] = mapped_column(String(40))
    offer_decline_reason: Mapped[str | None] = mapped_column(String(20))
    need_decline_reason: Mapped[str | None] = mapped_column(String(20))

    offer: Mapped[Listing] = relationship(foreign_keys=[offer_id])
    need: Mapped[Listing] = relationship(foreign_keys=[need_id])
    exchanges: Mapped[list[Exchange]] = relationship(back_populates="match", order_by="Exchange.date")


class Exchange(Base):
    """A realised transfer of material between the two firms of a match."""

    __tablename__ = "exchange"
    __table_args__ = (CheckConstraint("quantity > 0", name="quantity_positive"),)

    id: Mapped[intpk]
    match_id: Mapped[int] = mapped_column(ForeignKey("match.id", ondelete="CASCADE"), index=True)
    quantity: Mapped[float] = mapped_column(Float)
    unit: Mapped[Unit] = mapped_column(_enum(Unit, "unit"))
    tonnes: Mapped[float | None]
    date: Mapped[date] = mapped_column(Date)
    recorded_by_id: Mapped[int | None] = mapped_column(ForeignKey("user_account.id", ondelete="SET NULL"))
    created_at: Mapped[created]

    match: Mapped[Match] = relationship(back_populates="exchanges")


class FirmClaim(Base):
    """Someone registering with the SIRET of a firm already registered asks the CCMA to let them in."""

    __tablename__ = "firm_claim"

    id: Mapped[intpk]
    firm_id: Mapped[int] = mapped_column(ForeignKey("firm.id", ondelete="CASCADE"), index=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("user_account.id", ondelete="CASCADE"), index=True)
    message: Mapped[str] = mapped_column(Text, default="")
    status: Mapped[ClaimStatus] = mapped_column(_enum(ClaimStatus, "claim_status"), default=ClaimStatus.pending)
    created_at: Mapped[created]
    decided_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    decided_by_id: Mapped[int | None] = mapped_column(ForeignKey("user_account.id", ondelete="SET NULL"))
    decision_note: Mapped[str | None] = mapped_column(String(500))

    firm: Mapped[Firm] = relationship()
    user: Mapped[User] = relationship(foreign_keys=[user_id])


class FacilitationNote(Base):
    __tablename__ = "facilitation_note"

    id: Mapped[intpk]
    match_id: Mapped[int] = mapped_column(ForeignKey("match.id", ondelete="CASCADE"), index=True)
    author_id: Mapped[int | None] = mapped_column(ForeignKey("user_account.id", ondelete="SET NULL"))
    text: Mapped[str] = mapped_column(Text)
    created_at: Mapped[created]


# --- notifications, outbox and audit log ---------------------------------------------------------


class Notification(Base):
    """What one user is told (in-app list); e-mail and webhook deliveries hang off it via the outbox."""

    __tablename__ = "notification"
    __table_args__ = (
        UniqueConstraint("user_id", "dedup_key"),
        Index("ix_notification_user_read", "user_id", "read_at"),
    )

    id: Mapped[intpk]
    user_id: Mapped[int] = mapped_column(ForeignKey("user_account.id", ondelete="CASCADE"))
    kind: Mapped[str] = mapped_column(String(40))  # match.found, match.interest, match.accepted, introduction ...
    dedup_key: Mapped[str] = mapped_column(String(120))  # e.g. "match.found:42" — one notice per event
    match_id: Mapped[int | None] = mapped_column(ForeignKey("match.id", ondelete="CASCADE"))
    payload: Mapped[dict[str, Any]] = mapped_column(JsonType, default=dict)
    created_at: Mapped[created]
    read_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    digested_at: Mapped[datetime | None] = mapped_column(UTCDateTime)  # included in a daily/weekly digest

    user: Mapped[User] = relationship()
    match: Mapped[Match | None] = relationship()


class WebhookEndpoint(Base):
    __tablename__ = "webhook_endpoint"

    id: Mapped[intpk]
    firm_id: Mapped[int] = mapped_column(ForeignKey("firm.id", ondelete="CASCADE"), index=True)
    url: Mapped[str] = mapped_column(String(500))
    secret: Mapped[str] = mapped_column(String(100))  # "whsec_" + base64, per Standard Webhooks
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    disabled_reason: Mapped[str | None] = mapped_column(String(200))
    created_at: Mapped[created]


class MailboxMessage(Base):
    """E-mails kept in the database instead of sent (embedded mode), for the web app to show."""

    __tablename__ = "mailbox_message"

    id: Mapped[intpk]
    message_id: Mapped[str] = mapped_column(String(200), unique=True)
    to: Mapped[str] = mapped_column(String(254), index=True)
    subject: Mapped[str] = mapped_column(String(300))
    text: Mapped[str] = mapped_column(Text)
    html: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[created]



class OutboxEvent(Base):
    """An event written in the same transaction as the change it reports; relayed to the workers."""

    __tablename__ = "outbox"
    __table_args__ = (Index("ix_outbox_status_next", "status", "next_attempt_at"),)

    id: Mapped[intpk]
    kind: Mapped[str] = mapped_column(String(40))  # listing.published, match.found, ...
    payload: Mapped[dict[str, Any]] = mapped_column(JsonType, default=dict)
    idempotency_key: Mapped[str] = mapped_column(String(120), unique=True)
    status: Mapped[OutboxStatus] = mapped_column(
        _enum(OutboxStatus, "outbox_status"), default=OutboxStatus.pending
    )
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    # A worker holds the row until then (longer than a task may run); a crash just lets it lapse.
    locked_until: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # Last time the sweep handed it to the broker, so a backlog is not published again every sweep.
    published_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    last_error: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[created]
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)


class ImportStatus(enum.StrEnum):
    queued = "queued"
    running = "running"
    done = "done"  # read to the end: the report says what was written, or why nothing was
    failed = "failed"  # stopped before its end (the worker died or ran out of time)


class ImportJob(Base):
    """A bulk import run by a worker: the file until it is read, then the report the page shows."""

    __tablename__ = "import_job"

    id: Mapped[intpk]
    firm_id: Mapped[int] = mapped_column(ForeignKey("firm.id", ondelete="CASCADE"), index=True)
    user_id: Mapped[int | None] = mapped_column(ForeignKey("user_account.id", ondelete="SET NULL"))
    filename: Mapped[str] = mapped_column(String(255))
    content: Mapped[bytes | None] = mapped_column(LargeBinary)  # dropped once read
    valid_only: Mapped[bool] = mapped_column(Boolean, default=False)
    locale: Mapped[str] = mapped_column(String(8), default="fr")  # the report's language
    status: Mapped[ImportStatus] = mapped_column(_enum(ImportStatus, "import_status"), default=ImportStatus.queued)
    stage: Mapped[str | None] = mapped_column(String(20))  # reading, checking, writing
    rows_done: Mapped[int] = mapped_column(Integer, default=0)
    rows_total: Mapped[int | None] = mapped_column(Integer)
    report: Mapped[dict[str, Any] | None] = mapped_column(JsonType)
    created_at: Mapped[created]
    started_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class AuditLog(Base):
    __tablename__ = "audit_log"

    id: Mapped[intpk]
    at: Mapped[created]
    actor_id: Mapped[int | None] = mapped_column(ForeignKey("user_account.id", ondelete="SET NULL"))
    action: Mapped[str] = mapped_column(String(60))
    target_type: Mapped[str | None] = mapped_column(String(40))
    target_id: Mapped[int | None]
    details: Mapped[dict[str, Any]] = mapped_column(JsonType, default=dict)
