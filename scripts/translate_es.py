"""Add Spanish translations to the catalog: python scripts/translate_es.py FILE.json

FILE.json maps English messages to Spanish (a plural message maps to a list of two strings).
A helper for keeping app/translations/es in step; `scripts/i18n.py check` says what is missing.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from babel.messages.pofile import read_po, write_po

CATALOG = Path(__file__).resolve().parent.parent / "app/translations/es/LC_MESSAGES/messages.po"


def main(path: str) -> None:
    translations = json.loads(Path(path).read_text(encoding="utf-8"))
    with CATALOG.open("rb") as fh:
        catalog = read_po(fh)
    for message in catalog:
        key = message.id[0] if isinstance(message.id, tuple) else message.id
        if key in translations:
            value = translations[key]
            message.string = tuple(value) if isinstance(value, list) else value
            message.flags.discard("fuzzy")
    with CATALOG.open("wb") as fh:
        write_po(fh, catalog, sort_output=True, width=100, ignore_obsolete=True)


if __name__ == "__main__":
    main(sys.argv[1])
