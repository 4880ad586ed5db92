"""The pages' languages: Chinese (zh-CN) by default, English selectable.

Templates mark their words with Jinja2's i18n extension (`_()` and `{% trans %}`), written in
English; the Babel message catalogues under `locale/` give the Chinese. The catalogues are kept
as `.po` text and compiled in memory when the pages start (Babel's own compiler), so there is no
build step to forget and no binary in the repository. `make messages` re-extracts the words
from the templates and updates the catalogues.

The language is chosen with `?lang=en` / `?lang=zh-CN` and remembered in a cookie.
"""
from __future__ import annotations

import functools
import io
from pathlib import Path

import jinja2
from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po
from babel.support import NullTranslations, Translations

LOCALE_DIR = Path(__file__).with_name("locale")
TEMPLATE_DIR = Path(__file__).with_name("templates")
DEFAULT = "zh-CN"
LANGUAGES = {"zh-CN": "zh_CN", "en": "en"}   # what the page says -> the catalogue's folder
COOKIE = "cc_lang"


@functools.cache
def translations(language: str) -> NullTranslations:
    """The catalogue of a language, compiled from its .po (English needs none: the source is English)."""
    folder = LANGUAGES.get(language, LANGUAGES[DEFAULT])
    po = LOCALE_DIR / folder / "LC_MESSAGES" / "messages.po"
    if not po.is_file():
        return NullTranslations()
    with po.open("rb") as handle:
        catalog = read_po(handle, locale=folder)
    compiled = io.BytesIO()
    write_mo(compiled, catalog)
    compiled.seek(0)
    return Translations(compiled)


@functools.cache
def environment(language: str) -> jinja2.Environment:
    """One Jinja2 environment per language (the catalogue installed once, not per request)."""
    env = jinja2.Environment(loader=jinja2.FileSystemLoader(TEMPLATE_DIR), autoescape=True,
                             extensions=["jinja2.ext.i18n"], trim_blocks=True, lstrip_blocks=True)
    env.install_gettext_translations(translations(language), newstyle=True)  # type: ignore[attr-defined]
    return env


def choose(query_lang: str | None, cookie_lang: str | None) -> str:
    """The page's language: the query's if it names one we have, then the cookie's, then Chinese."""
    for candidate in (query_lang, cookie_lang):
        if candidate in LANGUAGES:
            return candidate
    return DEFAULT
