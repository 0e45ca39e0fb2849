"""Checks on free text from residents and agents, and masking of personal data in it."""

from __future__ import annotations

import re

from territoire.errors import invalid

# A tag opening (<b, </p, <!--, <?php): the Open311 description is plain text, "not html
# or code". Refusing beats silently stripping: the sender learns what is wrong.
HTML_TAG = re.compile(r"<\s*[A-Za-z!/?]")
CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")
EMAIL = re.compile(r"[\w.+-]+@[\w-]+(?:\.[\w-]+)+")
# French numbers (0X XX XX XX XX, +33 X …) and other long digit runs with separators.
PHONE = re.compile(r"(?<!\w)(?:\+\d{1,3}[ .-]?)?(?:\(?\d\)?[ .-]?){8,14}\d(?!\w)")
MASK = "[masqué]"


def clean_text(value: str | None, field: str, *, max_length: int, multiline: bool = True) -> str:
    """Trim, drop control characters, refuse markup and over-long text."""
    if value is None:
        return ""
    text = CONTROL.sub("", value.replace("\r\n", "\n")).strip()
    if not multiline and "\n" in text:
        raise invalid(field, "must be a single line")
    if HTML_TAG.search(text):
        raise invalid(field, "must be plain text, without HTML or code")
    if len(text) > max_length:
        raise invalid(field, f"at most {max_length} characters")
    return text


def redact_personal_data(text: str) -> str:
    """Mask e-mail addresses and phone numbers (a first pass; agents review the rest)."""
    return PHONE.sub(MASK, EMAIL.sub(MASK, text))
