"""Marshmallow schemas: what the API accepts and returns. The same classes drive the request
checks (parsing.py), the serialisation of answers and the OpenAPI document."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from marshmallow import Schema, fields

from ..models import (
    PUBLIC_ID_ALPHABET,
    PUBLIC_ID_LENGTH,
    Decision,
    Frequency,
    Kind,
    ListingStatus,
    MatchStatus,
    Role,
    Unit,
)
from ..services.decisions import DECLINE_REASONS

# Request checks accept only these values; listings created elsewhere (web forms, imports) may
# have been typed with other spellings, stored in the same canonical form.
UNITS = [u.value for u in Unit]
FREQUENCIES = [f.value for f in Frequency]


class ProblemSchema(Schema):
    """An error (RFC 9457)."""

    type = fields.String(required=True, metadata={"example": "tag:matchmaking,2026:validation-error"})
    title = fields.String(required=True)
    status = fields.Integer(required=True)
    detail = fields.String()
    errors = fields.Dict(keys=fields.String(), values=fields.String(),
                         metadata={"description": "Validation errors: field (dotted path) → message."})


def PublicId(**kwargs: Any) -> fields.String:  # noqa: N802 — a field, named like one
    """A listing's or a match's id: an opaque string (the integer one stays in the database)."""
    return fields.String(metadata={
        "pattern": f"^[{PUBLIC_ID_ALPHABET}]{{{PUBLIC_ID_LENGTH}}}$",
        "description": "Opaque id: random, it says nothing of when or next to what the item was made."},
        **kwargs)


class Moment(fields.String):
    """An instant (ISO 8601 date-time), or only its day (`YYYY-MM-DD`) when it is about another
    firm's anonymous listing (services/visibility.py `Audience.time`)."""

    def _serialize(self, value: Any, attr: str | None, obj: Any, **kwargs: Any) -> str | None:
        if value is None:
            return None
        if isinstance(value, datetime | date):
            return value.isoformat()
        return str(value)


def _moment(description: str = "") -> Moment:
    told = ("An instant (ISO 8601), or only the day (YYYY-MM-DD) when the item is another firm's "
            "anonymous listing, or a match with one.")
    return Moment(allow_none=True, required=True, metadata={"description": f"{description} {told}".strip()})


# --- accounts ----------------------------------------------------------------------------------


class FirmInSchema(Schema):
    name = fields.String(required=True)
    siret = fields.String(required=True, metadata={"description": "14 digits with a valid Luhn key."})
    naf_code = fields.String(allow_none=True, metadata={"example": "16.10A"})
    commune_insee = fields.String(allow_none=True, metadata={"description": "Or postal_code + commune."})
    postal_code = fields.String(allow_none=True)
    commune = fields.String(allow_none=True)
    address = fields.String(allow_none=True)
    contact_name = fields.String(allow_none=True)
    contact_email = fields.String(allow_none=True)
    contact_phone = fields.String(allow_none=True)


class UserInSchema(Schema):
    email = fields.String(required=True)
    password = fields.String(required=True, metadata={"description": "At least 10 characters."})
    name = fields.String(allow_none=True)


class RegisterInSchema(Schema):
    firm = fields.Nested(FirmInSchema, required=True)
    user = fields.Nested(UserInSchema, required=True)


class RegisterOutSchema(Schema):
    firm_id = fields.Integer(required=True)
    user_id = fields.Integer(required=True)
    token = fields.String(required=True)


class TokenInSchema(Schema):
    email = fields.String(required=True)
    password = fields.String(required=True)
    name = fields.String(allow_none=True, metadata={"description": "A label for the token (which script uses it)."})


class TokenOutSchema(Schema):
    token = fields.String(required=True)


class MeFirmSchema(Schema):
    id = fields.Integer(required=True)
    name = fields.String(required=True)
    siret = fields.String(required=True)
    naf_code = fields.String(allow_none=True)
    verified = fields.Boolean(metadata={"description": "Checked by a CCMA facilitator."})


class MeSchema(Schema):
    user_id = fields.Integer(required=True)
    email = fields.String(required=True)
    email_confirmed = fields.Boolean(required=True, metadata={
        "description": "Until the address is confirmed (link e-mailed at registration), listings can be kept "
                       "as drafts only and no match e-mail is sent."})
    name = fields.String(allow_none=True)
    role = fields.Enum(Role, by_value=True, required=True)
    firm = fields.Nested(MeFirmSchema, allow_none=True, required=True)


# --- listings ----------------------------------------------------------------------------------


class _ListingFieldsSchema(Schema):
    title = fields.String(metadata={"example": "Chutes de chambres à air"})
    description = fields.String(allow_none=True)
    reference = fields.String(allow_none=True, metadata={"description": "Your own reference for the listing."})
    low_code = fields.String(allow_none=True, metadata={
        "description": "European List of Waste code; suggested from the text when absent.", "example": "16 01 03"})
    material_family = fields.String(allow_none=True, metadata={"example": "rubber"})
    quantity = fields.Float(metadata={"description": "Per occurrence (see frequency)."})
    unit = fields.Enum(Unit, by_value=True)
    frequency = fields.Enum(Frequency, by_value=True)
    commune_insee = fields.String(allow_none=True, metadata={"description": "Defaults to the firm's main site."})
    site_id = fields.Integer(allow_none=True, metadata={"description": "One of the firm's sites."})
    radius_km = fields.Float(allow_none=True, metadata={"description": "Needs: how far the buyer will fetch."})
    available_from = fields.Date(allow_none=True)
    available_until = fields.Date(allow_none=True)
    anonymous = fields.Boolean(metadata={
        "description": "Hide the firm, its exact site and the price until a match is accepted by both firms."})
    hazardous = fields.Boolean()
    accepts_hazardous = fields.Boolean(metadata={"description": "Needs: the buyer may take hazardous waste."})
    price_eur_per_unit = fields.Float(allow_none=True)


class ListingInSchema(_ListingFieldsSchema):
    kind = fields.Enum(Kind, by_value=True, required=True)
    title = fields.String(required=True, metadata={"example": "Chutes de chambres à air"})
    quantity = fields.Float(required=True, metadata={"description": "Per occurrence (see frequency)."})
    unit = fields.Enum(Unit, by_value=True, required=True)
    frequency = fields.Enum(Frequency, by_value=True, required=True)
    status = fields.String(metadata={"enum": ["published", "draft"],
                                     "description": "Publish at once (default) or keep as a draft."})


class ListingPatchSchema(_ListingFieldsSchema):
    status = fields.String(metadata={"enum": ["published", "paused", "closed"]})


class FirmOutSchema(Schema):
    id = fields.Integer(required=True)
    name = fields.String(required=True)
    siret = fields.String(required=True)
    naf_code = fields.String(allow_none=True, required=True)
    contact_name = fields.String(allow_none=True, required=True,
                                 metadata={"description": "Shown once the two firms have accepted a match."})
    contact_email = fields.String(allow_none=True, required=True)
    contact_phone = fields.String(allow_none=True, required=True)
    verified = fields.Boolean(required=True, metadata={
        "description": "A CCMA facilitator checked that this firm is who it says it is."})


class PlaceOutSchema(Schema):
    commune_insee = fields.String(allow_none=True, required=True, metadata={
        "description": "null when the place is an area wider than a commune."})
    commune = fields.String(required=True, metadata={"description": "The commune, or the wider area's name."})
    postal_code = fields.String(allow_none=True, required=True)
    lat = fields.Float(required=True)
    lon = fields.Float(required=True)
    address = fields.String(allow_none=True, required=True)
    precision = fields.String(required=True, metadata={
        "enum": ["site", "commune", "territory", "department", "region"],
        "description": "commune: coordinates are the commune centroid; territory, department, region: an "
                       "anonymous listing whose commune has fewer than k firms (ANONYMITY_K) is placed at the "
                       "centroid of the smallest wider area that has k, and distances to it are rounded to "
                       "5, 10 or 20 km."})


class ListingOutSchema(Schema):
    id = PublicId(required=True)
    kind = fields.Enum(Kind, by_value=True, required=True)
    status = fields.Enum(ListingStatus, by_value=True, required=True)
    title = fields.String(required=True)
    description = fields.String(required=True)
    low_code = fields.String(allow_none=True, required=True)
    material_family = fields.String(allow_none=True, required=True)
    hazardous = fields.Boolean(required=True)
    accepts_hazardous = fields.Boolean(required=True)
    quantity = fields.Float(required=True)
    unit = fields.Enum(Unit, by_value=True, required=True)
    frequency = fields.Enum(Frequency, by_value=True, required=True)
    lot_tonnes = fields.Float(allow_none=True, required=True)
    annual_tonnes = fields.Float(allow_none=True, required=True)
    radius_km = fields.Float(allow_none=True, required=True)
    available_from = fields.Date(allow_none=True, required=True)
    available_until = fields.Date(allow_none=True, required=True)
    anonymous = fields.Boolean(required=True)
    price_eur_per_unit = fields.Float(allow_none=True, required=True,
                                      metadata={"description": "null when hidden from you."})
    created_at = _moment()
    updated_at = _moment()
    published_at = _moment()
    mine = fields.Boolean(required=True, metadata={"description": "The listing is your firm's."})
    identity_hidden = fields.Boolean(required=True, metadata={
        "description": "The firm, exact site and price are hidden from you (anonymous listing)."})
    firm = fields.Nested(FirmOutSchema, allow_none=True, required=True)
    location = fields.Nested(PlaceOutSchema, attribute="place", required=True)
    public_location = fields.Nested(PlaceOutSchema, attribute="public_place", allow_none=True, metadata={
        "description": "Your anonymous listing: the place other firms see (null otherwise)."})
    reference = fields.String(allow_none=True, required=True, metadata={"description": "Yours only."})
    site_id = fields.Integer(allow_none=True, required=True, metadata={"description": "Yours only."})


class ListingQuerySchema(Schema):
    mine = fields.Boolean(metadata={"description": "1: your firm's listings, in every status."})
    kind = fields.Enum(Kind, by_value=True)
    family = fields.String(metadata={"description": "Material family slug."})
    status = fields.Enum(ListingStatus, by_value=True, metadata={"description": "With mine=1 only."})
    page = fields.Integer(metadata={"minimum": 1})
    per_page = fields.Integer(metadata={"minimum": 1, "maximum": 100})


# --- matches, search, classification -----------------------------------------------------------


class MatchOutSchema(Schema):
    match_id = PublicId(required=True)
    offer_id = PublicId(required=True)
    need_id = PublicId(required=True)
    score = fields.Float(required=True, metadata={"minimum": 0, "maximum": 1})
    distance_km = fields.Float(allow_none=True, required=True, metadata={
        "description": "From your listing's site to the other listing as you may see it."})
    explanation = fields.Dict(required=True)
    status = fields.Enum(MatchStatus, by_value=True, required=True)
    my_side = fields.String(required=True, metadata={"enum": ["offer", "need"]})
    my_decision = fields.Enum(Decision, by_value=True, required=True)
    their_decision = fields.Enum(Decision, by_value=True, required=True)
    accepted_at = _moment()
    created_at = _moment()
    offer = fields.Nested(ListingOutSchema, required=True)
    need = fields.Nested(ListingOutSchema, required=True)


class MatchQuerySchema(Schema):
    status = fields.Enum(MatchStatus, by_value=True)
    page = fields.Integer(metadata={"minimum": 1})
    per_page = fields.Integer(metadata={"minimum": 1, "maximum": 100})


class DeclineQuerySchema(Schema):
    reason = fields.String(metadata={"enum": list(DECLINE_REASONS),
                                     "description": "Why, in one word: it trains the next model."})


class ExchangeInSchema(Schema):
    quantity = fields.Float(required=True)
    unit = fields.Enum(Unit, by_value=True, required=True)
    date = fields.Date(required=True)


class ExchangeOutSchema(Schema):
    id = fields.Integer(required=True)
    match_id = PublicId(required=True, attribute="match.public_id")
    quantity = fields.Float(required=True)
    unit = fields.Enum(Unit, by_value=True, required=True)
    tonnes = fields.Float(allow_none=True, required=True)
    date = fields.Date(required=True)
    created_at = fields.DateTime(allow_none=True, required=True)


class SearchQuerySchema(Schema):
    q = fields.String(metadata={"description": "What you look for, in your own words (or give family)."})
    kind = fields.Enum(Kind, by_value=True)
    near = fields.String(metadata={
        "description": "A commune's INSEE code or `lat,lon`; defaults to your firm's main site."})
    radius_km = fields.Float(metadata={"minimum": 0, "maximum": 1000})
    family = fields.String()
    limit = fields.Integer(metadata={"minimum": 1, "maximum": 100})


class SearchHitSchema(ListingOutSchema):
    score = fields.Float(required=True, metadata={"minimum": 0, "maximum": 1})
    distance_km = fields.Float(allow_none=True, required=True)
    explanation = fields.Dict(required=True)


class ClassifyInSchema(Schema):
    text = fields.String(required=True, metadata={"example": "chutes de chambres à air"})


class SuggestionSchema(Schema):
    code = fields.String(required=True)
    label_fr = fields.String(required=True)
    label_en = fields.String(required=True)
    hazardous = fields.Boolean(required=True)
    score = fields.Float(required=True)


class ClassifyOutSchema(Schema):
    suggestions = fields.List(fields.Nested(SuggestionSchema), required=True)
    material_family = fields.String(allow_none=True, required=True)
