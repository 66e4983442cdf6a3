"""Security headers on every response, and long caching for fingerprinted static files."""

from __future__ import annotations

from urllib.parse import urlsplit

from flask import Flask, Response, request


def content_security_policy(form_targets: list[str]) -> str:
    """The CSP; `form_targets` are extra origins a form may lead to (OAuth consent pages)."""
    return CSP.replace("form-action 'self'", " ".join(["form-action 'self'", *form_targets]))


def _origin(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}" if parts.scheme and parts.netloc else ""


CSP = "; ".join([
    "default-src 'self'",
    "script-src 'self'",
    "style-src 'self'",
    "img-src 'self' data:",
    "font-src 'self'",
    "connect-src 'self'",
    "manifest-src 'self'",
    "worker-src 'self'",
    "object-src 'none'",
    "base-uri 'none'",
    "frame-ancestors 'none'",
    "form-action 'self'",
])


def init_app(app: Flask) -> None:
    production = app.config["APP_ENV"] == "production"
    # "Connect a tracker" posts a form whose answer redirects to the platform's consent page,
    # and browsers hold form redirects to form-action too.
    targets = sorted({_origin(str(value)) for key, value in app.config.items()
                      if key.endswith("_AUTHORIZE_URL") and value} - {""})
    csp = content_security_policy(targets)

    @app.after_request
    def _headers(response: Response) -> Response:
        headers = response.headers
        headers.setdefault("Content-Security-Policy", csp)
        headers["X-Content-Type-Options"] = "nosniff"
        headers["Referrer-Policy"] = "same-origin"
        headers["X-Frame-Options"] = "DENY"
        headers["Permissions-Policy"] = "camera=(), microphone=(), geolocation=(), payment=()"
        headers["Cross-Origin-Opener-Policy"] = "same-origin"
        if production:
            headers["Strict-Transport-Security"] = "max-age=63072000; includeSubDomains"
        if request.endpoint == "static" and request.args.get("v"):
            headers["Cache-Control"] = "public, max-age=31536000, immutable"
        elif "Cache-Control" not in headers and response.mimetype in ("text/html",
                                                                       "application/json"):
            # Pages and API answers hold a member's own data: never keep them in shared caches.
            headers["Cache-Control"] = "no-store"
        response.vary.add("Cookie")  # one Vary header, which compression then extends
        return response
