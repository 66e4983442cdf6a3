"""gunicorn's access log, without the secrets that travel in some paths."""

from __future__ import annotations

import re
from typing import Any

from gunicorn.glogging import Logger

# Reset tokens and invite codes are part of their links' paths: never write them down.
SECRET_PATHS = re.compile(r"^/(reset|join)/[^/?]+")


class AccessLogger(Logger):  # type: ignore[misc]
    """The standard gunicorn logger, with secret path segments masked."""

    def atoms(self, resp: Any, req: Any, environ: Any, request_time: Any) -> dict[str, Any]:
        atoms: dict[str, Any] = super().atoms(resp, req, environ, request_time)
        if isinstance(atoms.get("U"), str):
            atoms["U"] = SECRET_PATHS.sub(r"/\1/…", atoms["U"])
        if isinstance(atoms.get("r"), str):  # the request line: no query (OAuth codes), no secrets
            line = re.sub(r"\?[^ ]*", "", atoms["r"])
            atoms["r"] = re.sub(r" /(reset|join)/[^/ ]+", r" /\1/…", line)
        return atoms
