"""The JSON API under /api/v1: request validation and the OpenAPI document, from the same schemas.

A feature declares an operation with `@api.operation("POST", "/cohorts", body=CohortCreate,
response=CohortPublic)`. The decorator validates the JSON body into the schema (answering a clear
4xx otherwise), serialises what the view returns through the response schema, and records the
operation so that `/api/v1/openapi.json` documents exactly what runs.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import wraps
from typing import Any, Literal

from flask import Blueprint, Flask, Response, current_app, jsonify, request
from flask_babel import lazy_gettext as _l
from pydantic import BaseModel, ValidationError
from pydantic.json_schema import models_json_schema
from werkzeug.exceptions import UnsupportedMediaType

from app.accounts.auth import current_user, not_signed_in
from app.db import LARGEST_INTEGER
from app.errors import InvalidInput
from app.urls import ID_DIGITS

PREFIX = "/api/v1"
Method = Literal["GET", "POST", "PUT", "PATCH", "DELETE"]


class ErrorDetail(BaseModel):
    code: str
    message: str
    field: str | None = None
    details: list[dict[str, Any]] | None = None


class ErrorBody(BaseModel):
    error: ErrorDetail


@dataclass(frozen=True)
class Operation:
    method: Method
    rule: str
    endpoint: str
    summary: str
    body: type[BaseModel] | None
    response: type[BaseModel] | None
    many: bool
    status: int
    auth: bool
    tags: tuple[str, ...] = field(default_factory=tuple)
    produces: str | None = None  # a file's media type, when the answer is a file, not JSON
    errors: tuple[int, ...] = ()  # refusals beyond the usual ones, e.g. 409 for a conflict
    resend: bool = False  # a resend with the same client_key answers 204, already done


def parse_body(schema: type[BaseModel]) -> Any:
    """The request's JSON body validated into `schema`, or a clear 4xx."""
    if not request.is_json:
        raise UnsupportedMediaType()
    data = request.get_json(silent=True)
    if data is None:
        raise InvalidInput(_l("We could not read that request: the JSON is not valid."))
    if not isinstance(data, dict):
        raise InvalidInput(_l("We could not read that request: please send a JSON object."))
    try:
        parsed = schema.model_validate(data)
    except ValidationError as exc:
        problem = exc.errors()[0]
        name = ".".join(str(part) for part in problem["loc"]) or "?"
        kind = problem["type"]
        if kind == "missing":
            message = _l("Something is missing: %(name)s.", name=name)
        elif kind in ("string_too_long", "too_long"):
            message = _l("This is too long: %(name)s.", name=name)
        else:
            message = _l("This is not in the expected form: %(name)s.", name=name)
        raise InvalidInput(message, field=name) from exc
    too_large = _too_large(parsed.model_dump())
    if too_large is not None:
        raise InvalidInput(_l("This is not in the expected form: %(name)s.", name=too_large),
                           field=too_large)
    return parsed


def _too_large(value: Any, name: str = "") -> str | None:
    """The name of the first whole number no database can hold (a driver error otherwise)."""
    if isinstance(value, int) and not isinstance(value, bool):
        return None if abs(value) <= LARGEST_INTEGER else name or "?"
    if isinstance(value, dict):
        items: list[tuple[Any, Any]] = list(value.items())
    elif isinstance(value, list):
        items = list(enumerate(value))
    else:
        return None
    for key, item in items:
        found = _too_large(item, f"{name}.{key}" if name else str(key))
        if found is not None:
            return found
    return None


def _dump(value: Any, schema: type[BaseModel] | None) -> Any:
    if schema is None:
        return value
    return schema.model_validate(value, from_attributes=True).model_dump(mode="json")


class ApiBlueprint(Blueprint):
    """A blueprint mounted at /api/v1 whose operations document themselves."""

    def __init__(self, name: str, import_name: str, *, tag: str) -> None:
        super().__init__(name, import_name, url_prefix=PREFIX)
        self.tag = tag
        self.operations: list[Operation] = []

    def operation(self, method: Method, rule: str, *, summary: str,
                  body: type[BaseModel] | None = None, response: type[BaseModel] | None = None,
                  many: bool = False, status: int = 200, auth: bool = True,
                  produces: str | None = None, errors: tuple[int, ...] = (),
                  resend: bool = False
                  ) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
        """Register a view; it receives `body=` (validated) and returns model(s) or None (or,
        with `produces`, a Response holding a file of that media type). `errors` documents the
        refusals it may answer beyond 400, 429 (and 401, 403, 404 with `auth`); `resend`, that
        it returns None (204) for a resend of something already done."""

        def decorator(view: Callable[..., Any]) -> Callable[..., Any]:
            @wraps(view)
            def wrapped(**kwargs: Any) -> Response | tuple[Response, int] | tuple[str, int]:
                if auth and current_user() is None:
                    raise not_signed_in()  # 401: sign in, or finish the second factor
                if body is not None:
                    kwargs["body"] = parse_body(body)
                result = view(**kwargs)
                if isinstance(result, Response):
                    return result
                if result is None:
                    return "", 204
                payload = [_dump(item, response) for item in result] if many else _dump(
                    result, response)
                return jsonify(payload), status

            self.add_url_rule(rule, endpoint=view.__name__, view_func=wrapped, methods=[method])
            self.operations.append(Operation(
                method=method, rule=rule, endpoint=f"{self.name}.{view.__name__}", summary=summary,
                body=body, response=response, many=many, status=status, auth=auth,
                tags=(self.tag,), produces=produces, errors=errors, resend=resend))
            return wrapped

        return decorator


_CONVERTER = re.compile(r"<(?:(\w+):)?(\w+)>")


def _path_and_params(rule: str) -> tuple[str, list[dict[str, Any]]]:
    params = [{"name": name, "in": "path", "required": True,
               "schema": {"type": "integer", "minimum": 1, "maximum": 10**ID_DIGITS - 1}
               if conv == "int" else {"type": "string"}}
              for conv, name in _CONVERTER.findall(rule)]
    return _CONVERTER.sub(r"{\2}", rule), params


def openapi_document(app: Flask) -> dict[str, Any]:
    """An OpenAPI 3.1 document of every ApiBlueprint operation registered on `app`."""
    operations = [op for bp in app.blueprints.values() if isinstance(bp, ApiBlueprint)
                  for op in bp.operations]
    models: set[type[BaseModel]] = {ErrorBody}
    for op in operations:
        models.update(m for m in (op.body, op.response) if m is not None)
    ordered = sorted(models, key=lambda m: m.__name__)
    _, schemas = models_json_schema(
        [(m, "validation") for m in ordered], ref_template="#/components/schemas/{model}")
    ref = "#/components/schemas/{}".format
    error = {"description": "An error, with a message for the member.",
             "content": {"application/json": {"schema": {"$ref": ref("ErrorBody")}}}}
    paths: dict[str, dict[str, Any]] = {}
    for op in operations:
        path, params = _path_and_params(PREFIX + op.rule)
        entry: dict[str, Any] = {"operationId": op.endpoint.replace(".", "_"),
                                 "summary": op.summary, "tags": list(op.tags),
                                 "responses": {"400": error, "429": error}}
        if params:
            entry["parameters"] = params
        if op.body is not None:
            entry["requestBody"] = {"required": True, "content": {
                "application/json": {"schema": {"$ref": ref(op.body.__name__)}}}}
            entry["responses"]["413"] = error
            entry["responses"]["415"] = error
        if op.produces is not None:
            entry["responses"][str(op.status)] = {
                "description": "Success: a file.", "content": {op.produces: {}}}
        elif op.response is not None:
            schema: dict[str, Any] = {"$ref": ref(op.response.__name__)}
            if op.many:
                schema = {"type": "array", "items": schema}
            entry["responses"][str(op.status)] = {
                "description": "Success.", "content": {"application/json": {"schema": schema}}}
        else:
            entry["responses"]["204"] = {"description": "Done."}
        if op.auth:
            entry["security"] = [{"session": [], "csrf": []}] if op.method != "GET" else [
                {"session": []}]
            entry["responses"]["401"] = error
            entry["responses"]["403"] = error
            entry["responses"]["404"] = error
        elif op.method != "GET":
            entry["security"] = [{"csrf": []}]
        for code in op.errors:
            entry["responses"][str(code)] = error
        if op.resend:
            entry["responses"]["204"] = {
                "description": "Already done: a resend with the same client_key."}
        paths.setdefault(path, {})[op.method.lower()] = entry
    return {
        "openapi": "3.1.0",
        "info": {"title": "Hearten API", "version": "1",
                 "description": "The JSON API used by Hearten's pages. Sign in, then send the "
                                "X-CSRFToken header (from GET /api/v1/csrf-token) on every "
                                "request that changes something."},
        "servers": [{"url": current_app.config.get("PUBLIC_URL") or "/"}],
        "paths": dict(sorted(paths.items())),
        "components": {
            "schemas": schemas.get("$defs", {}),
            "securitySchemes": {
                "session": {"type": "apiKey", "in": "cookie",
                            "name": app.config["SESSION_COOKIE_NAME"]},
                "csrf": {"type": "apiKey", "in": "header", "name": "X-CSRFToken"},
            },
        },
    }


def init_app(app: Flask) -> None:
    """Serve the OpenAPI document."""

    @app.get(f"{PREFIX}/openapi.json")
    def openapi_json() -> Response:
        return jsonify(openapi_document(app))
