"""The shell other domains build on: languages, formatting, navigation, templates, headers."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated

import pytest
from babel.messages.extract import extract_from_dir
from fastapi import APIRouter, Depends
from fastapi.responses import HTMLResponse
from fastapi.testclient import TestClient

from territoire.config import Settings
from territoire.http import LANGUAGE_COOKIE
from territoire.tenancy.models import Role
from territoire.tenancy.permissions import Permission
from territoire.web import i18n, nav
from territoire.web.templating import (
    PACKAGE_DIR,
    WEB_TEMPLATES,
    Page,
    PageContext,
    content_security_policy,
    page_for,
    template_dirs,
    tile_origin,
)
from tests.conftest import World

from .conftest import page_client, signed_in_client

ROOT = Path(__file__).resolve().parents[2]
AdminPage = Annotated[PageContext, Depends(page_for(Permission.ADMINISTER))]


# --- languages -------------------------------------------------------------------------


def test_french_is_the_default_and_english_is_one_click_away(world: World) -> None:
    tenant = world.tenant("ville-a")
    client = signed_in_client(world, world.account(tenant, Role.OPERATOR))
    french = client.get("/")
    assert '<html lang="fr">' in french.text
    assert "Équipements par domaine" in french.text
    assert french.headers["content-language"] == "fr"
    assert 'href="/?lang=en"' in french.text
    english = client.get("/", params={"lang": "en"})
    assert '<html lang="en">' in english.text
    assert "Assets by domain" in english.text and "Équipements par domaine" not in english.text
    assert "Sign out" in english.text and "Operator" in english.text
    assert client.cookies[LANGUAGE_COOKIE] == "en"
    # The choice sticks to later pages, error pages included.
    assert "Map of the territory" in client.get("/map").text
    assert "Page not found" in client.get("/nowhere").text
    back = client.get("/entities", params={"lang": "fr"})
    assert "Équipements" in back.text and client.cookies[LANGUAGE_COOKIE] == "fr"


def test_an_unknown_language_falls_back_to_french(world: World) -> None:
    client = page_client(world.app)
    response = client.get("/login", params={"lang": "de"})
    assert response.status_code == 200
    assert '<html lang="fr">' in response.text
    assert LANGUAGE_COOKIE not in client.cookies


def test_the_language_switch_keeps_the_other_query_parameters(world: World) -> None:
    tenant = world.tenant("ville-a")
    client = signed_in_client(world, world.account(tenant, Role.VIEWER))
    html = client.get("/entities", params={"type": "Streetlight", "lang": "fr"}).text
    assert 'href="/entities?type=Streetlight&amp;lang=en"' in html


def test_every_message_of_the_web_shell_is_translated_into_french() -> None:
    method_map = [("**.py", "python"), ("**/templates/**.html", "jinja2")]
    options = {"**/templates/**.html": {"trim_blocks": "true", "lstrip_blocks": "true"}}
    catalogue = i18n.translations("fr")
    missing = []
    for _file, _line, message, _comments, _context in extract_from_dir(
        str(PACKAGE_DIR / "web"), method_map, options_map=options
    ):
        singular = message[0] if isinstance(message, tuple) else message
        if catalogue.gettext(singular) == singular and not _same_in_french(singular):
            missing.append(singular)
    assert missing == [], "add these to web/locale/fr/LC_MESSAGES/messages.po"


def _same_in_french(message: str) -> bool:
    return message in {"Commune", "Communes", "Type", "Position", "Population", "Pages"} or (
        message.startswith("%(num)s commune") or message.startswith("longitude")
    )


def test_plural_forms_follow_each_language() -> None:
    french, english = i18n.translator("fr"), i18n.translator("en")
    # In French, zero takes the singular.
    assert french.ngettext("%(num)s asset", "%(num)s assets", 0) == "0 équipement"
    assert french.ngettext("%(num)s asset", "%(num)s assets", 2) == "2 équipements"
    assert english.ngettext("%(num)s asset", "%(num)s assets", 0) == "0 assets"
    assert english.ngettext("%(num)s asset", "%(num)s assets", 1) == "1 asset"


def test_dates_are_shown_in_paris_time_and_numbers_the_french_way() -> None:
    french, english = i18n.translator("fr"), i18n.translator("en")
    summer = datetime(2026, 7, 1, 22, 30, tzinfo=UTC)  # already 2 July in Paris
    winter = datetime(2026, 1, 15, 12, 0, tzinfo=UTC)
    assert french.format_datetime(summer) == "2 juil. 2026, 00:30:00"
    assert french.format_datetime(winter, "short") == "15/01/2026 13:00"
    assert french.format_date(summer) == "2 juil. 2026"
    assert english.format_datetime(winter) == "Jan 15, 2026, 1:00:00\u202fPM"
    assert french.format_number(1234567.891) == "1\u202f234\u202f567,891"
    assert french.format_number(3.14159, 2) == "3,14"
    assert english.format_number(1234567.891, 0) == "1,234,568"
    assert french.format_number(None) == ""


def test_domains_can_ship_their_own_catalogue(tmp_path: Path) -> None:
    def write(domain: str, body: str) -> None:
        folder = tmp_path / domain / "locale" / "fr" / "LC_MESSAGES"
        folder.mkdir(parents=True)
        header = (
            'msgid ""\nmsgstr ""\n"Language: fr\\n"\n'
            '"Plural-Forms: nplurals=2; plural=(n > 1);\\n"\n'
        )
        (folder / "messages.po").write_text(header + "\n" + body, encoding="utf-8")

    write(
        "web",
        'msgid "Map"\nmsgstr "Carte"\n\nmsgid "item"\nmsgid_plural "items"\n'
        'msgstr[0] "élément"\nmsgstr[1] "éléments"\n',
    )
    write(
        "alarms",
        'msgid "Alarms"\nmsgstr "Alarmes"\n\nmsgid "Map"\nmsgstr "Plan"\n\n'
        '#, fuzzy\nmsgid "Ack"\nmsgstr "Acquitter"\n',
    )
    files = i18n.catalogue_files("fr", root=tmp_path)
    assert files == [
        tmp_path / "web/locale/fr/LC_MESSAGES/messages.po",
        tmp_path / "alarms/locale/fr/LC_MESSAGES/messages.po",
    ]
    merged = i18n.merge_catalogues(files, "fr")
    assert merged.gettext("Map") == "Carte"  # the shell's wording wins
    assert merged.gettext("Alarms") == "Alarmes"
    assert merged.gettext("Ack") == "Ack"  # fuzzy translations are not used
    assert merged.ngettext("item", "items", 0) == "élément"  # French plural rule kept
    assert merged.ngettext("item", "items", 2) == "éléments"


# --- navigation and templates ----------------------------------------------------------


@pytest.fixture
def extra_nav() -> object:
    entry = nav.NavEntry("test-admin", "Tokens", "/admin-only", Permission.ADMINISTER, order=90)
    nav.register_nav(entry)
    yield entry
    nav._entries.pop(entry.key, None)


def test_domains_add_nav_entries_shown_by_permission(world: World, extra_nav: object) -> None:
    tenant = world.tenant("ville-a")
    admin = signed_in_client(world, world.account(tenant, Role.ADMIN))
    viewer = signed_in_client(world, world.account(tenant, Role.VIEWER, email="v@example.test"))
    assert 'href="/admin-only"' in admin.get("/").text
    assert 'href="/admin-only"' not in viewer.get("/").text
    keys = [e.key for e in nav.nav_entries(Role.ADMIN)]
    assert keys[:3] == ["home", "entities", "map"] and keys[-1] == "test-admin"
    current = admin.get("/entities").text
    assert '<a href="/entities" aria-current="page">' in current
    assert '<a href="/" aria-current="page">' not in current


def test_domain_pages_can_require_a_permission_and_get_html_errors(world: World) -> None:
    router = APIRouter()

    @router.get("/test-admin-page", response_class=HTMLResponse)
    def admin_page(page: AdminPage) -> HTMLResponse:
        context = {"status_code": 200, "title": "Admin", "explanation": "", "detail": ""}
        return page.render("error.html", context)

    world.app.include_router(router)  # type: ignore[attr-defined]
    tenant = world.tenant("ville-a")
    admin = signed_in_client(world, world.account(tenant, Role.ADMIN))
    viewer = signed_in_client(world, world.account(tenant, Role.VIEWER, email="v@example.test"))
    assert admin.get("/test-admin-page").status_code == 200
    refused = viewer.get("/test-admin-page")
    assert refused.status_code == 403
    assert refused.headers["content-type"].startswith("text/html")
    assert "Accès refusé" in refused.text


def test_templates_are_looked_up_in_the_web_shell_first_then_in_every_domain() -> None:
    dirs = template_dirs()
    assert dirs[0] == WEB_TEMPLATES
    expected = {path for path in PACKAGE_DIR.glob("*/templates") if path.is_dir()}
    assert set(dirs) == expected


# --- headers, static files, no inline code ---------------------------------------------


def test_html_pages_carry_a_strict_content_security_policy(world: World) -> None:
    tenant = world.tenant("ville-a")
    client = signed_in_client(world, world.account(tenant, Role.VIEWER))
    for path in ("/", "/entities", "/map", "/login", "/nowhere"):
        response = client.get(path)
        policy = response.headers["content-security-policy"]
        assert "script-src 'self'" in policy and "unsafe-inline" not in policy, path
        assert "frame-ancestors 'none'" in policy
        html = response.text
        assert not re.search(r"<script(?![^>]*\bsrc=)[^>]*>", html), f"inline script in {path}"
        assert not re.search(r"\sstyle=", html), f"inline style in {path}"
        assert not re.search(r"\son[a-z]+=", html), f"inline handler in {path}"


def test_the_tile_server_is_allowed_only_when_configured() -> None:
    plain = content_security_policy(Settings(tile_url=""))
    assert "img-src 'self' data:;" in plain
    osm = content_security_policy(Settings(tile_url="https://{s}.tile.example.org/{z}/{x}/{y}.png"))
    assert "img-src 'self' data: https://*.tile.example.org;" in osm
    assert tile_origin("http://127.0.0.1:8080/tiles/{z}/{x}/{y}.png") == "http://127.0.0.1:8080"
    assert tile_origin("ftp://x/{z}") is None


def test_vendored_libraries_are_served_with_their_licences(client: TestClient) -> None:
    for path in (
        "vendor/leaflet/leaflet.js",
        "vendor/leaflet/leaflet.css",
        "vendor/leaflet/images/layers.png",
        "vendor/htmx/htmx.min.js",
        "vendor/uplot/uPlot.iife.min.js",
        "vendor/uplot/uPlot.min.css",
        "js/map.js",
        "css/territoire.css",
    ):
        assert client.get(f"/static/{path}").status_code == 200, path
    vendor = PACKAGE_DIR / "web" / "static" / "vendor"
    for folder in ("leaflet", "htmx", "uplot"):
        assert (vendor / folder / "LICENSE").stat().st_size > 100
    versions = (vendor / "VERSIONS.md").read_text()
    assert "1.9.4" in versions and "2.0.11" in versions and "1.6.32" in versions
    assert 'version="1.9.4"' in (vendor / "leaflet" / "leaflet.js").read_text()[:2000] or (
        "1.9.4" in (vendor / "leaflet" / "leaflet.js").read_text()
    )


def test_an_unexpected_error_is_a_plain_html_page_without_details(world: World) -> None:
    router = APIRouter()

    @router.get("/test-broken-page", response_class=HTMLResponse)
    def broken(page: Page) -> HTMLResponse:
        raise RuntimeError("secret internal detail")

    world.app.include_router(router)  # type: ignore[attr-defined]
    tenant = world.tenant("ville-a")
    client = signed_in_client(world, world.account(tenant, Role.VIEWER))
    quiet = TestClient(world.app, raise_server_exceptions=False)  # type: ignore[arg-type]
    quiet.cookies = client.cookies
    quiet.headers["Accept"] = "text/html"
    response = quiet.get("/test-broken-page")
    assert response.status_code == 500
    assert response.headers["content-type"].startswith("text/html")
    assert "Un problème est survenu" in response.text
    assert "secret internal detail" not in response.text
    assert "Traceback" not in response.text
