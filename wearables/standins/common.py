"""Pieces both platform stand-ins share: PKCE, the consent page shell and the test controls."""

from __future__ import annotations

import base64
import hashlib
import html
from typing import Any

from flask import Response, jsonify


def s256(verifier: str) -> str:
    """The PKCE S256 challenge for a code verifier."""
    digest = hashlib.sha256(verifier.encode("ascii")).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")


def page_html(title: str, body: str) -> str:
    """A minimal HTML page: no scripts, no styles, nothing a strict CSP would block."""
    return (f'<!doctype html><html lang="en"><head><meta charset="utf-8"><meta name="viewport" '
            f'content="width=device-width, initial-scale=1"><title>{html.escape(title)}</title></head>'
            f"<body><main>{body}</main></body></html>")


def is_count(value: Any) -> bool:
    """Whether a JSON value is a non-negative integer (and not a boolean)."""
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0


def control_error(message: str) -> Response:
    """A 400 from a test control."""
    response = jsonify({"error": message})
    response.status_code = 400
    return response
