"""Interface languages: gettext catalogues read from `.po` files, and locale-aware formatting.

Catalogues are compiled in memory when first used, so an install needs no compile step.
The web shell's catalogue (`web/locale/<lang>/LC_MESSAGES/messages.po`) is the main one;
each domain ships its own `<domain>/locale/<lang>/LC_MESSAGES/messages.po`, merged into
it, so that work on several domains never fights over one file.
"""

from __future__ import annotations

import io
from collections.abc import Callable
from datetime import date, datetime
from functools import cache
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from babel.dates import format_date as babel_format_date
from babel.dates import format_datetime as babel_format_datetime
from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po
from babel.numbers import format_decimal
from babel.support import Translations
from jinja2 import pass_context
from jinja2.runtime import Context
from markupsafe import Markup

LANGUAGES: dict[str, str] = {"fr": "Français", "en": "English"}
DEFAULT_LANGUAGE = "fr"
DISPLAY_ZONE = ZoneInfo("Europe/Paris")
PACKAGE_DIR = Path(__file__).resolve().parent.parent


def N_(message: str) -> str:
    """Mark a message for extraction where it is defined; translate it where it is shown."""
    return message


def catalogue_files(language: str, root: Path = PACKAGE_DIR) -> list[Path]:
    """The web shell's catalogue first, then the domains' own, in a stable order."""
    relative = Path("locale") / language / "LC_MESSAGES" / "messages.po"
    main = root / "web" / relative
    others = sorted(path for path in root.glob(f"*/{relative.as_posix()}") if path != main)
    return [path for path in (main, *others) if path.is_file()]


def _compile(path: Path, language: str) -> Translations:
    with path.open("rb") as handle:
        catalogue = read_po(handle, locale=language)
    buffer = io.BytesIO()
    write_mo(buffer, catalogue)  # fuzzy entries are left out, as msgfmt does
    buffer.seek(0)
    return Translations(fp=buffer)


def merge_catalogues(files: list[Path], language: str) -> Translations:
    """One catalogue from several; the first one (the shell's) gives the plural rule and
    wins when two catalogues translate the same message differently, so that a domain
    cannot change the wording of the shared layout."""
    if not files:
        return Translations()
    merged = _compile(files[0], language)
    for path in files[1:]:
        merged.merge(_compile(path, language))
    if len(files) > 1:
        merged.merge(_compile(files[0], language))
    return merged


@cache
def translations(language: str) -> Translations:
    """The merged catalogue of one language (cached for the life of the process)."""
    return merge_catalogues(catalogue_files(language), language)


def choose_language(*candidates: str | None, default: str = DEFAULT_LANGUAGE) -> str:
    """The first supported language among the candidates, else the default."""
    for candidate in candidates:
        if candidate and candidate.lower() in LANGUAGES:
            return candidate.lower()
    return default if default in LANGUAGES else DEFAULT_LANGUAGE


class Translator:
    """Message lookup and formatting for one language, for Python code and templates alike.

    The template callables follow Jinja's "new style" gettext: the translation is trusted
    markup (it comes from our own catalogues, never from users), substituted variables are
    escaped, and `%` formatting always applies.
    """

    def __init__(self, language: str) -> None:
        self.language = language
        self.catalogue = translations(language)

    def gettext(self, message: str, **variables: Any) -> str:
        text = self.catalogue.gettext(message)
        return text % variables if variables else text

    def ngettext(self, singular: str, plural: str, count: int, **variables: Any) -> str:
        variables.setdefault("num", count)
        return self.catalogue.ngettext(singular, plural, count) % variables

    def template_callables(self) -> dict[str, Callable[..., Any]]:
        catalogue = self.catalogue

        @pass_context
        def gettext(context: Context, message: str, **variables: Any) -> str:
            text: str = catalogue.gettext(message)
            if context.eval_ctx.autoescape:
                text = Markup(text)  # noqa: S704  (catalogue text is trusted)
            return text % variables

        @pass_context
        def ngettext(
            context: Context, singular: str, plural: str, count: int, **variables: Any
        ) -> str:
            variables.setdefault("num", count)
            text: str = catalogue.ngettext(singular, plural, count)
            if context.eval_ctx.autoescape:
                text = Markup(text)  # noqa: S704  (catalogue text is trusted)
            return text % variables

        return {"gettext": gettext, "_": gettext, "ngettext": ngettext}

    def format_number(self, value: float | int | None, digits: int | None = None) -> str:
        if value is None:
            return ""
        if digits is None:
            return str(format_decimal(value, locale=self.language))
        pattern = "#,##0." + "0" * digits if digits > 0 else "#,##0"
        return str(format_decimal(value, format=pattern, locale=self.language))

    def format_datetime(self, moment: datetime | None, style: str = "medium") -> str:
        """A UTC timestamp shown in Europe/Paris, in the language's conventions."""
        if moment is None:
            return ""
        return str(babel_format_datetime(moment, style, tzinfo=DISPLAY_ZONE, locale=self.language))

    def format_date(self, day: date | datetime | None, style: str = "medium") -> str:
        if day is None:
            return ""
        if isinstance(day, datetime):
            day = day.astimezone(DISPLAY_ZONE).date()
        return str(babel_format_date(day, style, locale=self.language))


@cache
def translator(language: str) -> Translator:
    return Translator(choose_language(language))
