"""Server-rendered pages of the web shell: sign-in, home, entity list and detail, map.

Routes stay thin: they read the request, call the tenancy and registry services, and
render a template. Page-shaped data (filters, pagination) is prepared in `web.views`.
"""

from __future__ import annotations

import hmac
from dataclasses import dataclass
from typing import Annotated
from urllib.parse import urlencode

import orjson
from fastapi import APIRouter, Form, Query, Request
from fastapi.responses import HTMLResponse, Response
from pydantic import ValidationError

from territoire.db.base import utcnow
from territoire.errors import DomainError, Forbidden, NotAuthenticated, invalid
from territoire.geo import parse_bbox
from territoire.http import (
    PRE_SESSION_COOKIE,
    DbSession,
    Reader,
    clear_session_cookie,
    csrf_token_for,
    set_session_cookie,
)
from territoire.registry import service as registry
from territoire.tenancy import service as tenancy
from territoire.tenancy.api import sign_in
from territoire.tenancy.schemas import LoginIn
from territoire.web import maplayers, views
from territoire.web.i18n import translator
from territoire.web.labels import type_label
from territoire.web.templating import Page, PageContext, PublicPage, local_path

router = APIRouter(tags=["web"], include_in_schema=False)

GEOJSON = "application/geo+json"


# --- signing in and out ----------------------------------------------------------------


def _login_form(
    page: PageContext, *, next_path: str, email: str = "", error: str | None = None, status: int
) -> HTMLResponse:
    return page.render(
        "web/login.html",
        {
            "form_token": page.pre_session_csrf_token(),
            "next_path": next_path,
            "email": email,
            "error": error,
        },
        status_code=status,
    )


@router.get("/login", response_class=HTMLResponse)
def login_form(
    page: PublicPage, next_path: Annotated[str | None, Query(alias="next")] = None
) -> Response:
    target = local_path(next_path)
    if page.principal is not None:
        return page.redirect(target)
    return _login_form(page, next_path=target, status=200)


@router.post("/login", response_class=HTMLResponse)
def login_submit(
    request: Request,
    page: PublicPage,
    session: DbSession,
    email: Annotated[str, Form(max_length=1000)] = "",
    password: Annotated[str, Form(max_length=1024)] = "",
    next_path: Annotated[str, Form(alias="next", max_length=2000)] = "/",
    csrf_token: Annotated[str, Form(max_length=200)] = "",
) -> Response:
    target = local_path(next_path)
    seed = request.cookies.get(PRE_SESSION_COOKIE, "")
    expected = csrf_token_for(page.settings, seed)
    if len(seed) < 32 or not hmac.compare_digest(expected, csrf_token):
        error = page.gettext("This form has expired. Please sign in again.")
        return _login_form(page, next_path=target, email=email, error=error, status=403)
    if not email.strip() or not password:
        error = page.gettext("Enter your e-mail address and your password.")
        return _login_form(page, next_path=target, email=email, error=error, status=422)
    try:
        credentials = LoginIn(email=email.strip(), password=password)
        key, _tenant_id = sign_in(session, page.settings, credentials)
    except (ValidationError, NotAuthenticated):
        error = page.gettext("Wrong e-mail address or password.")
        return _login_form(page, next_path=target, email=email, error=error, status=401)
    principal = tenancy.resolve_session(session, key)
    assert principal is not None and principal.user_id is not None
    if len(tenancy.memberships_of(session, principal.user_id)) > 1:
        target = "/choose-tenant?" + urlencode({"next": target})
    response = page.redirect(target)
    set_session_cookie(response, page.settings, key)
    response.delete_cookie(PRE_SESSION_COOKIE, path="/")
    return response


@router.post("/logout")
def logout(page: Page, session: DbSession) -> Response:
    principal = page.principal
    if principal is not None and principal.session_key_hash:
        tenancy.close_session_by_hash(session, principal.session_key_hash)
    response = page.redirect("/login")
    clear_session_cookie(response)
    return response


@router.get("/choose-tenant", response_class=HTMLResponse)
def choose_tenant_form(
    page: Page,
    session: DbSession,
    next_path: Annotated[str | None, Query(alias="next")] = None,
) -> Response:
    return page.render(
        "web/choose_tenant.html",
        {"choices": _memberships(page, session), "next_path": local_path(next_path), "error": None},
    )


@router.post("/choose-tenant", response_class=HTMLResponse)
def choose_tenant(
    page: Page,
    session: DbSession,
    tenant: Annotated[str, Form(max_length=100)] = "",
    next_path: Annotated[str, Form(alias="next", max_length=2000)] = "/",
) -> Response:
    choices = _memberships(page, session)
    chosen = next((c for c in choices if c.slug == tenant), None)
    if chosen is None or page.user is None:
        return page.render(
            "web/choose_tenant.html",
            {
                "choices": choices,
                "next_path": local_path(next_path),
                "error": page.gettext("Choose one of your collectivities."),
            },
            status_code=422,
        )
    key = tenancy.open_session(
        session,
        user_id=page.user.id,
        tenant_id=chosen.id,
        max_age_seconds=page.settings.session_max_age_seconds,
    )
    assert page.principal is not None and page.principal.session_key_hash is not None
    tenancy.close_session_by_hash(session, page.principal.session_key_hash)
    response = page.redirect(local_path(next_path))
    set_session_cookie(response, page.settings, key)
    return response


@dataclass(frozen=True)
class TenantChoice:
    id: int
    slug: str
    name: str
    current: bool


def _memberships(page: PageContext, session: DbSession) -> list[TenantChoice]:
    if page.user is None:
        raise Forbidden("only a person signed in with a session can change collectivity")
    return [
        TenantChoice(
            id=tenant.id,
            slug=tenant.slug,
            name=tenant.name,
            current=page.tenant is not None and tenant.id == page.tenant.id,
        )
        for _membership, tenant in tenancy.memberships_of(session, page.user.id)
    ]


# --- pages -----------------------------------------------------------------------------


@router.get("/", response_class=HTMLResponse)
def home(page: Page, session: DbSession) -> Response:
    return page.render("web/home.html", views.home_data(session, page.tenant_id))


@router.get("/entities", response_class=HTMLResponse)
def entity_list(
    request: Request,
    page: Page,
    session: DbSession,
    type: str = "",
    commune: str = "",
    q: str = "",
    bbox: str = "",
    page_number: Annotated[str, Query(alias="page", max_length=20)] = "1",
) -> Response:
    tenant_id = page.tenant_id
    filters = views.EntityListFilters(type=type, commune=commune, q=q, bbox=bbox)
    status = 200
    try:
        listing = views.entity_listing(session, tenant_id, filters, page_number)
    except DomainError as error:
        listing = views.empty_listing(session, tenant_id, filters, error.message)
        status = error.status_code
    partial = request.headers.get("hx-request") == "true" and not request.headers.get(
        "hx-history-restore-request"
    )
    template = "web/_entity_results.html" if partial else "web/entities.html"
    return page.render(template, listing, status_code=status)


@router.get("/entities/{entity_id}", response_class=HTMLResponse)
def entity_detail(entity_id: str, page: Page, session: DbSession) -> Response:
    entity = registry.get_entity(session, page.tenant_id, entity_id)
    data = views.entity_data(session, page.tenant_id, entity, page.settings)
    activity = views.entity_panel_data(session, page.tenant_id, entity, utcnow())
    return page.render("web/entity.html", {**data, **activity})


@router.get("/entities/{entity_id}/panel", response_class=HTMLResponse)
def entity_panel(entity_id: str, page: Page, session: DbSession) -> Response:
    """The map's side panel for one asset (an htmx fragment; the asset page shows the
    same sections in full)."""
    entity = registry.get_entity(session, page.tenant_id, entity_id)
    data = views.entity_data(session, page.tenant_id, entity, page.settings)
    return page.render(
        "web/_entity_panel.html",
        {**data, **views.entity_panel_data(session, page.tenant_id, entity, utcnow())},
    )


@router.get("/entities/{entity_id}/series")
def entity_series(
    entity_id: str,
    session: DbSession,
    principal: Reader,
    period: Annotated[str, Query(max_length=10)] = "day",
) -> Response:
    """Chart data of every series of an asset over a day, a week or a month (rollups)."""
    data = views.series_chart_data(session, principal.tenant_id, entity_id, period, utcnow())
    return Response(orjson.dumps(data), media_type="application/json")


@router.get("/map", response_class=HTMLResponse)
def map_page(page: Page, session: DbSession) -> Response:
    layers = [
        {
            "key": layer.key,
            "label": page.gettext(layer.label),
            "colour": layer.colour,
            "count": count,
            "checked": layer.shown_at_first,
        }
        for layer, count in maplayers.offered_layers(session, page.tenant_id)
    ]
    return page.render(
        "web/map.html",
        {
            "layers": layers,
            "states": [
                {
                    "key": key,
                    "label": page.gettext(maplayers.STATE_LABELS[key]),
                    "colour": maplayers.STATE_COLOURS[key],
                }
                for key in maplayers.STATES
            ],
            "communes": tenancy.list_communes(session, page.tenant_id),
            **views.map_settings(page.settings),
        },
    )


@router.get("/map/state")
def map_state(
    request: Request,
    session: DbSession,
    principal: Reader,
    bbox: Annotated[str, Query(max_length=200)] = "",
    zoom: Annotated[str, Query(max_length=4)] = "",
    layers: Annotated[str, Query(max_length=500)] = "",
    commune: Annotated[str, Query(max_length=10)] = "",
    state: Annotated[str, Query(max_length=200)] = "",
) -> Response:
    """Entities of the chosen layers in `bbox`, by state: points, or clusters (grid
    cells with counts and worst state) when too many are in view. Compact JSON."""
    if not bbox:
        raise invalid("bbox", "required: minLon,minLat,maxLon,maxLat")
    query = maplayers.MapQuery(
        bbox=parse_bbox(bbox),
        zoom=maplayers.parse_zoom(zoom),
        domains=maplayers.registry_domains(maplayers.parse_layer_keys(layers)),
        commune_id=maplayers.commune_id_of(session, principal.tenant_id, commune),
        states=maplayers.parse_states(state),
    )
    labels = translator(views.request_language(request))
    answer = maplayers.map_state(
        session,
        principal.tenant_id,
        query,
        utcnow(),
        lambda entity_type: labels.gettext(type_label(entity_type)),
    )
    return Response(orjson.dumps(answer), media_type="application/json")


@router.get("/map/search")
def map_search(
    session: DbSession,
    principal: Reader,
    q: Annotated[str, Query(max_length=1000)] = "",
) -> Response:
    """Assets by name or identifier, and the address typed (streets, communes)."""
    results = maplayers.search(session, principal.tenant_id, q)
    return Response(orjson.dumps({"results": results}), media_type="application/json")


@router.get("/map/features")
def map_features(
    request: Request,
    session: DbSession,
    principal: Reader,
    bbox: str = "",
    layers: str = "",
) -> Response:
    """GeoJSON of the chosen layers inside `bbox` (minLon,minLat,maxLon,maxLat)."""
    if not bbox:
        raise invalid("bbox", "required: minLon,minLat,maxLon,maxLat")
    box = parse_bbox(bbox)
    chosen = maplayers.parse_layer_keys(layers)
    labels = translator(views.request_language(request))
    collection = maplayers.feature_collection(
        session,
        principal.tenant_id,
        box,
        chosen,
        lambda entity_type: labels.gettext(type_label(entity_type)),
    )
    return Response(orjson.dumps(collection), media_type=GEOJSON)


@router.get("/map/communes")
def map_communes(session: DbSession, principal: Reader) -> Response:
    collection = maplayers.communes_collection(session, principal.tenant_id)
    return Response(orjson.dumps(collection), media_type=GEOJSON)
