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
        for key in ("U", "r"):
            if isinstance(atoms.get(key), str):
                atoms[key] = SECRET_PATHS.sub(r"/\1/…", atoms[key]) if key == "U" else (
                    re.sub(r" /(reset|join)/[^/? ]+", r" /\1/…", atoms[key]))
        return atoms
