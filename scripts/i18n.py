"""Keep the message catalogs in step with the code.

    python scripts/i18n.py extract   # refresh app/translations/messages.pot and merge into es
    python scripts/i18n.py compile   # build the .mo files (done by `make`)
    python scripts/i18n.py check     # fail if a message has no Spanish translation
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
TRANSLATIONS = ROOT / "app" / "translations"
POT = TRANSLATIONS / "messages.pot"
SOURCES = ["app", "wearables", "goals", "feed", "notify", "coach"]
PYBABEL = str(Path(sys.executable).parent / "pybabel")


def extract(pot: Path = POT) -> None:
    subprocess.run([PYBABEL, "-q", "extract", "-F", str(ROOT / "babel.cfg"), "-k", "_l",
                    "-k", "lazy_gettext", "-o", str(pot), "--no-location", "--omit-header",
                    "--sort-output", *SOURCES], cwd=ROOT, check=True)


def update() -> None:
    extract()
    subprocess.run([PYBABEL, "-q", "update", "-i", str(POT), "-d", str(TRANSLATIONS),
                    "--no-fuzzy-matching", "--ignore-obsolete"], check=True)


def compile_() -> None:
    """Build the .mo files, and fail loudly if a catalog was skipped (e.g. marked fuzzy)."""
    subprocess.run([PYBABEL, "-q", "compile", "-d", str(TRANSLATIONS)], check=True)
    for po in TRANSLATIONS.glob("*/LC_MESSAGES/messages.po"):
        mo = po.with_suffix(".mo")
        if not mo.exists() or mo.stat().st_mtime < po.stat().st_mtime:
            sys.exit(f"{po} was not compiled: is its header missing or marked fuzzy?")


def missing(pot: Path = POT) -> list[str]:
    """Messages in the code that the Spanish catalog does not translate."""
    from babel.messages.pofile import read_po

    with (TRANSLATIONS / "es" / "LC_MESSAGES" / "messages.po").open("rb") as fh:
        spanish = read_po(fh)
    if spanish.fuzzy:  # pybabel would skip the whole catalog when compiling
        return ["(the Spanish catalog's header is missing or marked fuzzy)"]
    with pot.open("rb") as fh:
        template = read_po(fh)
    gaps = []
    for message in template:
        if not message.id:
            continue
        found = spanish.get(message.id)
        strings = found.string if found is not None else None
        ok = all(strings) if isinstance(strings, tuple | list) else bool(strings)
        if not ok or (found is not None and found.fuzzy):
            gaps.append(str(message.id))
    return gaps


if __name__ == "__main__":
    action = sys.argv[1] if len(sys.argv) > 1 else "check"
    if action == "extract":
        update()
    elif action == "compile":
        compile_()
    elif action == "check":
        gaps = missing()
        for gap in gaps:
            print("untranslated:", gap)
        sys.exit(1 if gaps else 0)
    else:
        sys.exit(__doc__)
