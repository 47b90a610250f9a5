"""Delivery of notifications: e-mail (SMTP, or the local mailbox in the embedded default) and
webhooks signed per the Standard Webhooks specification.

Each delivery is one outbox row carrying the notices one event owes one recipient: one e-mail
("your listing X has 6 new matches", the best ten listed) or one webhook call with the list of
matches. Every effect carries an id derived from that row (Message-ID, webhook-id), so a retry
after a crash is a duplicate the receiver can recognise. The local mailbox is written in the same
transaction that marks the row done, so there it is exactly once.

What a message says about the other firm's listing goes through services/visibility.py, as the
recipient (or, for a webhook, any member of the endpoint's firm) may see it: an anonymous
listing's firm, exact site and price stay hidden until both firms accept the match.
"""

from __future__ import annotations

import base64
import email.policy
import hashlib
import hmac
import ipaddress
import json
import re
import secrets
import smtplib
import socket
import ssl
import time
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from email.message import EmailMessage
from email.utils import format_datetime, parseaddr
from typing import Any
from urllib.parse import urlsplit

from flask import current_app
from flask_babel import force_locale, format_decimal, gettext, ngettext
from flask_babel import lazy_gettext as _l
from sqlalchemy import select
from sqlalchemy.orm import Session

from ..models import (
    Firm,
    Kind,
    Listing,
    MailboxMessage,
    Match,
    MatchStatus,
    Notification,
    OutboxEvent,
    Role,
    User,
    WebhookEndpoint,
    utcnow,
)
from . import outbox, preferences, queries, visibility
from . import validation as v
from .relay import GiveUp, RetryLater

USER_AGENT = "matchmaking-webhooks/1"
# Long header values (List-Unsubscribe links) stay plain ASCII instead of being RFC 2047-encoded.
MAIL_POLICY = email.policy.SMTP.clone(max_line_length=998)


@dataclass(frozen=True)
class Settings:
    smtp_host: str | None = None
    smtp_port: int = 587
    smtp_user: str | None = None
    smtp_password: str | None = None
    smtp_tls: str = "starttls"
    smtp_timeout: float = 30.0
    sender: str = "ne-pas-repondre@example.fr"
    base_url: str = "http://127.0.0.1:5000"
    match_path: str = "/matches/{id}"
    inbox_path: str = "/matches"
    secret_key: str = ""
    webhook_allow_private: bool = False
    webhook_timeout: float = 10.0

    @classmethod
    def from_config(cls, config: Mapping[str, Any]) -> Settings:
        return cls(
            smtp_host=config.get("SMTP_HOST") or None,
            smtp_port=int(config.get("SMTP_PORT") or 587),
            smtp_user=config.get("SMTP_USER") or None,
            smtp_password=config.get("SMTP_PASSWORD") or None,
            smtp_tls=str(config.get("SMTP_TLS") or "none").lower(),
            smtp_timeout=float(config.get("SMTP_TIMEOUT") or 30),
            sender=str(config.get("MAIL_FROM") or cls.sender),
            base_url=str(config.get("BASE_URL") or cls.base_url).rstrip("/"),
            match_path=str(config.get("MATCH_URL_PATH") or cls.match_path),
            secret_key=str(config.get("SECRET_KEY") or ""),
            webhook_allow_private=bool(config.get("WEBHOOK_ALLOW_PRIVATE")),
            webhook_timeout=float(config.get("WEBHOOK_TIMEOUT") or 10),
        )

    @classmethod
    def current(cls) -> Settings:
        return cls.from_config(current_app.config)

    @property
    def mail_domain(self) -> str:
        address = parseaddr(self.sender)[1]
        return address.rpartition("@")[2] or "matchmaking.local"

    def match_url(self, match: Match | None) -> str:
        """A match's page, by its public id."""
        return self.base_url + (self.match_path.format(id=match.public_id) if match is not None else "/")

    def inbox_url(self, listing_id: str | None = None) -> str:
        """The match list, at one listing's group when given (the rest of a capped e-mail)."""
        return self.base_url + self.inbox_path + (f"#g-{listing_id}" if listing_id else "")


def deliver(session: Session, event: OutboxEvent) -> str | None:
    """Carry out one `deliver.*` outbox row; raises RetryLater or GiveUp when it cannot."""
    settings = Settings.current()
    if event.kind == "deliver.email":
        if "notification_ids" in event.payload:
            return deliver_notices(session, event, settings)
        return deliver_email(session, int(event.payload["notification_id"]), settings)  # rows queued before grouping
    if event.kind == "deliver.webhook":
        if "notification_ids" in event.payload:
            return deliver_webhook_batch(session, event, settings)
        return deliver_webhook(session, int(event.payload["notification_id"]), int(event.payload["endpoint_id"]),
                               settings)
    if event.kind == "deliver.digest":
        return deliver_digest(session, event, settings)
    if event.kind == "deliver.mail":
        message = plain_message(event.payload, settings)
        return send(session, message, settings)
    raise GiveUp(f"no delivery for {event.kind}")


# --- e-mail --------------------------------------------------------------------------------------


SUBJECTS = {
    "match.found": _l("New match for “%(title)s”"),
    "match.improved": _l("A better match for “%(title)s”"),
    "match.interested": _l("A firm is interested in a match for “%(title)s”"),
    "match.accepted": _l("Match accepted for “%(title)s”: you can now get in touch"),
    "match.declined": _l("A match for “%(title)s” was declined"),
    "match.introduced": _l("The exchange's facilitator introduces you to a firm for “%(title)s”"),
}
MATCH_KINDS = frozenset({"match.found", "match.improved"})
EMAIL_MAX_MATCHES = 10  # an instant e-mail lists the best ten; the rest are a link away
DIGEST_MAX_ITEMS = 30


def render(name: str, **context: Any) -> str:
    """Render an e-mail template without the web pages' context processors (no request in a worker)."""
    return current_app.jinja_env.get_template(name).render(**context)


def message_id(kind: str, ident: int | str, settings: Settings) -> str:
    return f"<{kind}-{ident}@{settings.mail_domain}>"


_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029]+")
SUBJECT_MAX = 200


def header_text(value: str, limit: int = SUBJECT_MAX) -> str:
    """A value fit for one header line: newlines and control characters (a listing's title may
    carry them) become spaces, the length is capped; the e-mail library then encodes and folds it."""
    text = " ".join(_CONTROL.sub(" ", value).split())
    return text if len(text) <= limit else text[: limit - 1].rstrip() + "…"


def _envelope(to: str, subject: str, text: str, html: str | None, msgid: str, settings: Settings,
              unsubscribe: str | None = None) -> EmailMessage:
    message = EmailMessage(policy=MAIL_POLICY)
    message["From"] = settings.sender
    message["To"] = to
    message["Subject"] = header_text(subject)
    message["Message-ID"] = msgid
    message["Date"] = format_datetime(utcnow())
    message["Auto-Submitted"] = "auto-generated"
    if unsubscribe:
        message["List-Unsubscribe"] = f"<{unsubscribe}>"
        message["List-Unsubscribe-Post"] = "List-Unsubscribe=One-Click"  # RFC 8058
    message.set_content(text)
    if html:
        message.add_alternative(html, subtype="html")
    return message


def _links(user: User, settings: Settings) -> dict[str, str]:
    token = preferences.unsubscribe_token(user, settings.secret_key)
    return {
        "unsubscribe_url": f"{settings.base_url}/notifications/desabonnement/{token}",
        "base_url": settings.base_url,
    }


def notification_email(notification: Notification, settings: Settings, msgid: str | None = None) -> EmailMessage:
    """One notice on its own (a decision, an introduction), from the notice's own payload."""
    user = notification.user
    payload = dict(notification.payload)
    links = _links(user, settings)
    with force_locale(user.locale or "fr"):
        subject = str(SUBJECTS.get(notification.kind, SUBJECTS["match.found"]) % {
            "title": payload.get("listing_title", "")})
        context = {"n": payload, "kind": notification.kind, "user": user, "subject": subject,
                   "match_url": settings.match_url(notification.match), **links}
        text = render("email/notification.txt", **context)
        html = render("email/notification.html", **context)
    return _envelope(user.email, subject, text, html, msgid or message_id("notification", notification.id, settings),
                     settings, links["unsubscribe_url"])


def deliver_email(session: Session, notification_id: int, settings: Settings) -> str:
    """A row of one notice, as queued before deliveries were grouped."""
    notification = session.get(Notification, notification_id)
    if notification is None:
        return "notification deleted"
    user = notification.user
    if not user.active or not user.notify_email:
        return "e-mail no longer wanted"
    return send(session, notification_email(notification, settings), settings)


def digest_email(session: Session, user: User, ids: list[int], mode: str, ident: int, settings: Settings) -> \
        EmailMessage | None:
    """All of a user's notices since the last digest in one e-mail, grouped by their listing."""
    notices = _notices(session, ids)
    links = _links(user, settings)
    with force_locale(user.locale or "fr"):
        entries = notice_entries(session, visibility.audience(session, user), notices, settings)
        if not entries:
            return None
        if mode == "weekly":
            subject = ngettext("Your weekly summary: %(num)s notice", "Your weekly summary: %(num)s notices",
                               len(entries))
        else:
            subject = ngettext("Your daily summary: %(num)s notice", "Your daily summary: %(num)s notices",
                               len(entries))
        context = {"user": user, "subject": subject, "mode": mode, **links,
                   **_listing_groups(entries, DIGEST_MAX_ITEMS, settings, user.locale or "fr")}
        text = render("email/digest.txt", **context)
        html = render("email/digest.html", **context)
    return _envelope(user.email, subject, text, html, message_id("digest", ident, settings), settings,
                     links["unsubscribe_url"])


def deliver_digest(session: Session, event: OutboxEvent, settings: Settings) -> str:
    user = session.get(User, int(event.payload["user_id"]))
    if user is None or not user.active or not user.notify_email:
        return "e-mail no longer wanted"
    ids = [int(i) for i in event.payload.get("notification_ids", [])]
    message = digest_email(session, user, ids, str(event.payload.get("mode", "daily")), event.id, settings)
    if message is None:
        return "nothing left to tell"
    return send(session, message, settings)


# --- grouped notices: what one event tells one recipient ----------------------------------------


@dataclass
class FirmAudience(visibility.Audience):
    """What any member of one firm may see: the audience of a webhook, which speaks to the firm."""

    firm: int = 0

    @property
    def firm_id(self) -> int | None:
        return self.firm

    @property
    def sees_all(self) -> bool:
        return False


_KM_PART = re.compile(r"\d+ km")


def phrase(explanation: Mapping[str, Any] | None, lang: str, own_kind: Kind) -> str:
    """The engine's plain-words reason ("même matière : sciure · couvre 80 % …") without its
    distance (messages give the distance as the recipient may know it, next to it)."""
    text = str((explanation or {}).get("phrase_fr" if lang == "fr" else "phrase_en") or "")
    parts = [part for part in text.split(" · ") if part and not _KM_PART.fullmatch(part)]
    if own_kind is Kind.offer:  # the engine words the share from the buyer's side
        parts = [part.replace("de votre besoin annuel", "du besoin annuel") for part in parts]
    return " · ".join(parts)


def _notices(session: Session, ids: list[int]) -> list[Notification]:
    if not ids:
        return []
    return list(session.scalars(select(Notification).where(Notification.id.in_(ids)).order_by(Notification.id)))


def _sides(match: Match, firm_id: int | None) -> tuple[Listing, Listing] | None:
    """(the firm's own listing, the other one), or None when the firm is no party to the match."""
    if firm_id is not None and match.offer.firm_id == firm_id:
        return match.offer, match.need
    if firm_id is not None and match.need.firm_id == firm_id:
        return match.need, match.offer
    return None


def notice_entries(session: Session, audience: visibility.Audience, notices: list[Notification],
                   settings: Settings) -> list[dict[str, Any]]:
    """The notices as this audience may read them, from the matches as they are now: best score
    first for new matches, then the other news in order. A match that went stale since is left out;
    anything about the other firm's listing goes through the audience's visibility rules."""
    entries: list[dict[str, Any]] = []
    for notification in notices:
        match = session.get(Match, notification.match_id) if notification.match_id else None
        if match is None:
            continue
        sides = _sides(match, audience.firm_id)
        if sides is None:
            continue
        if notification.kind in MATCH_KINDS and match.status is MatchStatus.stale:
            continue
        own, other = sides
        view = audience.view(other)
        entry: dict[str, Any] = {
            "notification_id": notification.id,
            "kind": notification.kind,
            "match_id": match.public_id,
            "score": round(match.score, 3),
            "distance_km": audience.distance_between(own, other),
            "listing_id": own.public_id,
            "listing_title": own.title,
            "listing_kind": own.kind.value,
            "other_listing_id": other.public_id,
            "other_title": other.title,
            "other_kind": other.kind.value,
            "other_commune": view.place.commune,
            "other_firm_name": view.firm.name if view.firm is not None else None,
            "other_price_eur_per_unit": view.price_eur_per_unit,
            "phrase_fr": phrase(match.explanation, "fr", own.kind),
            "phrase_en": phrase(match.explanation, "en", own.kind),
            "url": settings.match_url(match),
        }
        if notification.kind == "match.introduced":
            entry |= {key: notification.payload.get(key) for key in ("facilitator_name", "message")}
        entries.append(entry)
    # New matches best first, equal scores by the match's public id (queries.ranked): notices follow
    # the order the matches were made in, and so would place an anonymous listing among its firm's
    # named ones. The other news (decisions, introductions) in the order they happened.
    entries.sort(key=lambda e: (e["kind"] not in MATCH_KINDS,
                                queries.ranked(e["score"], e["match_id"]) if e["kind"] in MATCH_KINDS
                                else (0.0, ""), e["notification_id"]))
    return entries


def _listing_groups(entries: list[dict[str, Any]], cap: int, settings: Settings, lang: str) -> dict[str, Any]:
    """The first `cap` entries grouped by the recipient's listing (best group first), and a link
    to the rest: the listing's group in the match list when all are about one listing."""
    shown = entries[:cap]
    groups: dict[str, dict[str, Any]] = {}
    for entry in shown:
        group = groups.setdefault(entry["listing_id"], {"listing_id": entry["listing_id"],
                                                        "listing_title": entry["listing_title"], "items": []})
        headline = ""
        if entry["kind"] not in MATCH_KINDS:
            headline = str(SUBJECTS.get(entry["kind"], SUBJECTS["match.found"]) % {"title": entry["listing_title"]})
        distance = entry["distance_km"]
        group["items"].append(entry | {
            "headline": headline,
            "phrase": entry["phrase_fr" if lang == "fr" else "phrase_en"],
            # "3,4" near, "27" farther, in the reader's own way of writing numbers
            "distance_text": None if distance is None else str(format_decimal(
                round(distance, 1) if distance < 10 else round(distance), format="#,##0.#")),
        })
    listing_ids = {entry["listing_id"] for entry in entries}
    rest = len(entries) - len(shown)
    return {
        "groups": list(groups.values()),
        "one_listing": len(listing_ids) == 1,
        "rest": rest,
        "rest_text": ngettext("… and %(num)s more match", "… and %(num)s more matches", rest) if rest else "",
        "inbox_url": settings.inbox_url(next(iter(listing_ids)) if len(listing_ids) == 1 else None),
    }


def notices_subject(entries: list[dict[str, Any]]) -> str:
    """"Votre annonce « X » a 6 nouvelles correspondances", or the one partner listing's title."""
    first = entries[0]
    if any(entry["kind"] not in MATCH_KINDS for entry in entries):
        return str(SUBJECTS.get(first["kind"], SUBJECTS["match.found"]) % {"title": first["listing_title"]})
    listings = {entry["listing_id"] for entry in entries}
    if len(entries) == 1:
        if first["kind"] == "match.improved":
            return str(SUBJECTS["match.improved"] % {"title": first["listing_title"]})
        return str(gettext("New match for “%(title)s”: “%(other)s”", title=first["listing_title"],
                           other=first["other_title"]))
    if len(listings) == 1:
        return str(ngettext("Your listing “%(title)s” has %(num)s new match",
                            "Your listing “%(title)s” has %(num)s new matches", len(entries),
                            title=first["listing_title"]))
    return str(ngettext("%(num)s new match for your listings", "%(num)s new matches for your listings",
                        len(entries)))


def notices_email(session: Session, user: User, ids: list[int], ident: int, settings: Settings) -> \
        EmailMessage | None:
    """The one e-mail of one event for one user: its new matches, best first (ten at most, with a
    link to the rest), or the one decision or introduction it brings. None if nothing is left."""
    notices = _notices(session, ids)
    msgid = message_id("notices", ident, settings)
    links = _links(user, settings)
    with force_locale(user.locale or "fr"):
        entries = notice_entries(session, visibility.audience(session, user), notices, settings)
        if not entries:
            return None
        if len(entries) == 1 and entries[0]["kind"] not in MATCH_KINDS:
            notice = next(n for n in notices if n.id == entries[0]["notification_id"])
            return notification_email(notice, settings, msgid)
        subject = notices_subject(entries)
        context = {"user": user, "subject": subject, "count": len(entries), **links,
                   **_listing_groups(entries, EMAIL_MAX_MATCHES, settings, user.locale or "fr")}
        text = render("email/matches.txt", **context)
        html = render("email/matches.html", **context)
    return _envelope(user.email, subject, text, html, msgid, settings, links["unsubscribe_url"])


def deliver_notices(session: Session, event: OutboxEvent, settings: Settings) -> str:
    user = session.get(User, int(event.payload["user_id"]))
    if user is None or not user.active or not user.notify_email:
        return "e-mail no longer wanted"
    ids = [int(i) for i in event.payload.get("notification_ids", [])]
    message = notices_email(session, user, ids, event.id, settings)
    if message is None:
        return "nothing left to tell"
    return send(session, message, settings)


def plain_message(payload: Mapping[str, Any], settings: Settings) -> EmailMessage:
    return _envelope(str(payload["to"]), str(payload["subject"]), str(payload["text"]), payload.get("html"),
                     str(payload["message_id"]), settings)


def send_mail(session: Session, *, to: str, subject: str, text: str, key: str, html: str | None = None) -> None:
    """Hand one e-mail (account mails: password reset …) over for delivery, in the caller's transaction.

    With SMTP configured it becomes an outbox row the workers send; in the embedded default it is
    written straight to the local mailbox.
    """
    settings = Settings.current()
    # Unique per call: a key (e.g. a reset id) may come back after rows are deleted; the id is fixed
    # here, so retries of the same outbox row still share it.
    msgid = message_id("mail", f"{key}.{uuid.uuid4().hex[:12]}", settings)
    if settings.smtp_host is None:
        _to_mailbox(session, _envelope(to, subject, text, html, msgid, settings))
        return
    payload = {"to": to, "subject": subject, "text": text, "html": html, "message_id": msgid}
    outbox.emit(session, "deliver.mail", payload, f"mail:{key}"[:120])


def _to_mailbox(session: Session, message: EmailMessage) -> str:
    msgid = str(message["Message-ID"])
    if session.scalar(select(MailboxMessage.id).where(MailboxMessage.message_id == msgid)) is not None:
        return "already in the mailbox"
    text_part = message.get_body(("plain",))
    html_part = message.get_body(("html",))
    session.add(MailboxMessage(
        message_id=msgid,
        to=str(message["To"]),
        subject=str(message["Subject"])[:300],
        text=text_part.get_content() if text_part is not None else "",
        html=html_part.get_content() if html_part is not None else None,
    ))
    session.flush()
    return "written to the mailbox"


def send(session: Session, message: EmailMessage, settings: Settings) -> str:
    """Send over SMTP, or keep in the local mailbox when no SMTP server is configured."""
    if settings.smtp_host is None:
        return _to_mailbox(session, message)
    try:
        smtp: smtplib.SMTP
        if settings.smtp_tls == "ssl":
            smtp = smtplib.SMTP_SSL(settings.smtp_host, settings.smtp_port, timeout=settings.smtp_timeout,
                                    context=ssl.create_default_context())
        else:
            smtp = smtplib.SMTP(settings.smtp_host, settings.smtp_port, timeout=settings.smtp_timeout)
        with smtp:
            if settings.smtp_tls == "starttls":
                smtp.starttls(context=ssl.create_default_context())
            if settings.smtp_user:
                smtp.login(settings.smtp_user, settings.smtp_password or "")
            smtp.send_message(message)
    except smtplib.SMTPRecipientsRefused as exc:
        codes = [code for code, _ in exc.recipients.values()]
        if all(code >= 500 for code in codes):
            raise GiveUp(f"recipient refused: {exc.recipients}") from exc
        raise RetryLater(f"recipient deferred: {exc.recipients}") from exc
    except smtplib.SMTPResponseException as exc:
        if exc.smtp_code >= 500 and exc.smtp_code not in (530, 535):  # not an auth problem we could fix
            raise GiveUp(f"SMTP {exc.smtp_code}: {exc.smtp_error!r}") from exc
        raise RetryLater(f"SMTP {exc.smtp_code}: {exc.smtp_error!r}") from exc
    except (OSError, smtplib.SMTPException) as exc:
        raise RetryLater(f"SMTP server unavailable: {exc}") from exc
    return f"sent {message['Message-ID']}"


def mailbox_for(session: Session, viewer: User | None, limit: int = 100) -> list[MailboxMessage]:
    """The local mailbox as a user may see it: their own address, or everything for an admin."""
    if viewer is None:
        return []
    query = select(MailboxMessage)
    if viewer.role is not Role.admin:
        query = query.where(MailboxMessage.to == viewer.email)
    return list(session.scalars(query.order_by(MailboxMessage.id.desc()).limit(limit)))


# --- webhooks ------------------------------------------------------------------------------------


def new_secret() -> str:
    return "whsec_" + base64.b64encode(secrets.token_bytes(24)).decode()


def sign(secret: str, msg_id: str, timestamp: int, body: bytes) -> str:
    """`v1,<base64 HMAC-SHA256 of "id.timestamp.body">` keyed with the secret's decoded bytes."""
    key = base64.b64decode(secret.removeprefix("whsec_"))
    mac = hmac.new(key, f"{msg_id}.{timestamp}.".encode() + body, hashlib.sha256).digest()
    return "v1," + base64.b64encode(mac).decode()


_NAT64 = (ipaddress.IPv6Network("64:ff9b::/96"), ipaddress.IPv6Network("64:ff9b:1::/48"))
_V4_COMPATIBLE = ipaddress.IPv6Network("::/96")


def _embedded_ipv4(ip: ipaddress.IPv6Address) -> list[ipaddress.IPv4Address]:
    """IPv4 addresses an IPv6 form carries (mapped, compatible, NAT64, 6to4, Teredo): a router may
    deliver to them, so they are checked like the IPv4 address itself."""
    found: list[ipaddress.IPv4Address] = []
    if ip.ipv4_mapped is not None:
        found.append(ip.ipv4_mapped)
    if ip in _V4_COMPATIBLE or any(ip in net for net in _NAT64):
        found.append(ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF))
    if ip.sixtofour is not None:
        found.append(ip.sixtofour)
    if ip.teredo is not None:
        found.extend(ip.teredo)
    return found


def _allowed_ip(raw: str) -> bool:
    ip = ipaddress.ip_address(raw.split("%", 1)[0])
    if isinstance(ip, ipaddress.IPv6Address):
        inner = _embedded_ipv4(ip)
        if inner:
            return all(v4.is_global and not v4.is_multicast for v4 in inner)
    return ip.is_global and not ip.is_multicast


def resolve_target(url: str, allow_private: bool) -> tuple[str, str, int, str]:
    """(scheme, host, port, address to connect to): the address is checked, then used as is, so
    a DNS answer that changes between check and connection cannot reach an internal service."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise GiveUp("webhook URL must be http(s)://host/…")
    port = parts.port or (443 if parts.scheme == "https" else 80)
    try:
        infos = socket.getaddrinfo(parts.hostname, port, type=socket.SOCK_STREAM)
    except OSError as exc:
        raise RetryLater(f"cannot resolve {parts.hostname}: {exc}") from exc
    addresses = [str(info[4][0]) for info in infos]
    if not allow_private:
        refused = [a for a in addresses if not _allowed_ip(a)]
        if refused:
            raise GiveUp(f"webhook address not allowed (private, loopback or link-local): {refused[0]}")
    return parts.scheme, parts.hostname, port, addresses[0]


def webhook_body(notification: Notification, settings: Settings) -> dict[str, Any]:
    data = dict(notification.payload)
    data.pop("listing_kind", None)
    return {
        "type": notification.kind,
        "timestamp": notification.created_at.isoformat(),
        "data": {"notification_id": notification.id, **data, "url": settings.match_url(notification.match)},
    }


def post_webhook(endpoint: WebhookEndpoint, msg_id: str, body: bytes, settings: Settings,
                 timestamp: int | None = None) -> int:
    """POST one signed message; returns the HTTP status (never follows redirects)."""
    import urllib3

    scheme, host, port, address = resolve_target(endpoint.url, settings.webhook_allow_private)
    parts = urlsplit(endpoint.url)
    path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    timestamp = int(time.time()) if timestamp is None else timestamp
    default_port = 443 if scheme == "https" else 80
    headers = {
        "Host": host if port == default_port else f"{host}:{port}",
        "Content-Type": "application/json",
        "User-Agent": USER_AGENT,
        "webhook-id": msg_id,
        "webhook-timestamp": str(timestamp),
        "webhook-signature": sign(endpoint.secret, msg_id, timestamp, body),
    }
    timeout = urllib3.Timeout(connect=min(5.0, settings.webhook_timeout), read=settings.webhook_timeout)
    pool: urllib3.HTTPConnectionPool
    if scheme == "https":
        pool = urllib3.HTTPSConnectionPool(address, port, server_hostname=host, assert_hostname=host,
                                           timeout=timeout, retries=False)
    else:
        pool = urllib3.HTTPConnectionPool(address, port, timeout=timeout, retries=False)
    try:
        response = pool.urlopen("POST", path, body=body, headers=headers, redirect=False, retries=False,
                                assert_same_host=False, preload_content=True)
    except urllib3.exceptions.HTTPError as exc:
        raise RetryLater(f"webhook unreachable: {exc}") from exc
    finally:
        pool.close()
    return int(response.status)


def deliver_webhook(session: Session, notification_id: int, endpoint_id: int, settings: Settings) -> str:
    """A webhook row of one notice, as queued before deliveries were grouped."""
    notification = session.get(Notification, notification_id)
    endpoint = session.get(WebhookEndpoint, endpoint_id)
    if notification is None or endpoint is None:
        return "notification or endpoint deleted"
    if not endpoint.active:
        return f"endpoint disabled: {endpoint.disabled_reason or ''}".strip()
    msg_id = f"msg_{notification.id}"
    body = json.dumps(webhook_body(notification, settings), separators=(",", ":"), ensure_ascii=False).encode()
    return _answer(session, endpoint, post_webhook(endpoint, msg_id, body, settings))


def webhook_id(event: OutboxEvent) -> str:
    """The webhook-id of a grouped delivery: its outbox row's, the same on every retry."""
    return f"msg_d{event.id}"


def webhook_batch_body(session: Session, event: OutboxEvent, endpoint: WebhookEndpoint,
                       settings: Settings) -> dict[str, Any] | None:
    """One event's news for one firm: `matches.found` with the list of new matches, or the one
    decision or introduction; what it says of the other firms is what any member may see."""
    notices = _notices(session, [int(i) for i in event.payload.get("notification_ids", [])])
    entries = notice_entries(session, FirmAudience(session, None, firm=endpoint.firm_id), notices, settings)
    if not entries:
        return None
    kinds = {entry["kind"] for entry in entries}
    kind = "matches.found" if kinds <= MATCH_KINDS else (entries[0]["kind"] if len(kinds) == 1 else "notices")
    return {
        "type": kind,
        "timestamp": event.created_at.isoformat(),
        "data": {"count": len(entries), "matches": entries, "url": settings.inbox_url()},
    }


def deliver_webhook_batch(session: Session, event: OutboxEvent, settings: Settings) -> str:
    endpoint = session.get(WebhookEndpoint, int(event.payload["endpoint_id"]))
    if endpoint is None:
        return "endpoint deleted"
    if not endpoint.active:
        return f"endpoint disabled: {endpoint.disabled_reason or ''}".strip()
    content = webhook_batch_body(session, event, endpoint, settings)
    if content is None:
        return "nothing left to tell"
    body = json.dumps(content, separators=(",", ":"), ensure_ascii=False).encode()
    return _answer(session, endpoint, post_webhook(endpoint, webhook_id(event), body, settings))


def _answer(session: Session, endpoint: WebhookEndpoint, status: int) -> str:
    if 200 <= status < 300:
        return f"HTTP {status}"
    if status == 410:
        # The receiver says the endpoint is gone for good (Standard Webhooks): stop sending there.
        endpoint.active = False
        endpoint.disabled_reason = f"HTTP 410 on {utcnow().isoformat(timespec='seconds')}"
        session.flush()
        return "endpoint gone (HTTP 410): disabled"
    raise RetryLater(f"webhook answered HTTP {status}")


def create_endpoint(session: Session, firm: Firm, url: object, *, allow_private: bool | None = None) -> WebhookEndpoint:
    """Register a firm's webhook URL with a fresh `whsec_` secret (shown to the firm once)."""
    allow = Settings.current().webhook_allow_private if allow_private is None else allow_private
    errors = v.Collector()
    clean = errors.check("url", v.text, url, max_length=500, required=True)
    if clean:
        parts = urlsplit(clean)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            errors.add("url", _l("Give a full address starting with https://"))
        elif not allow:
            try:
                resolve_target(clean, allow_private=False)
            except GiveUp:
                errors.add("url", _l("This address points to a private network; it cannot receive webhooks."))
            except RetryLater:
                errors.add("url", _l("This host name cannot be resolved."))
    errors.raise_if_any()
    endpoint = WebhookEndpoint(firm_id=firm.id, url=clean, secret=new_secret(), active=True)
    session.add(endpoint)
    session.flush()
    return endpoint
