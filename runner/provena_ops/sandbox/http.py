"""What every sandbox service shares on the wire: Provena's error bodies, 401s and role tiers.

Provena's services run FastAPI on pydantic 1, so their 422 bodies use pydantic-1 wording; and
they answer every authentication or authorisation failure with 401, never 403.
"""

from __future__ import annotations

import enum
import json
import types
import typing
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any

from fastapi import APIRouter, FastAPI, HTTPException, Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, PlainTextResponse
from fastapi.routing import APIRoute
from pydantic import BaseModel

from provena_ops.sandbox.realm import MISSING_ROLE, NOT_AUTHENTICATED, Identity, Realm, TokenError


class InternalError(Exception):
    """A failure Provena's code leaves uncaught (e.g. a KeyError): FastAPI answers it with a bare
    500 `Internal Server Error` in plain text, not a JSON detail."""


def provena_error(status_code: int, detail: Any) -> HTTPException:
    headers = {"WWW-Authenticate": "Bearer"} if status_code == 401 else None
    return HTTPException(status_code=status_code, detail=detail, headers=headers)


def unauthorised(detail: str) -> HTTPException:
    return provena_error(401, detail)


def status(success: bool, details: str) -> dict[str, Any]:
    return {"success": success, "details": details}


def soft_failure(details: str, **extra: Any) -> JSONResponse:
    """Provena's 'soft' failure: HTTP 200 with status.success=false and the other keys null."""
    return JSONResponse({"status": status(False, details), **extra})


_V1_ERRORS: dict[str, tuple[str, str]] = {
    "missing": ("field required", "value_error.missing"),
    "int_parsing": ("value is not a valid integer", "type_error.integer"),
    "int_type": ("value is not a valid integer", "type_error.integer"),
    "float_parsing": ("value is not a valid float", "type_error.float"),
    "bool_parsing": ("value could not be parsed to a boolean", "type_error.bool"),
    "bool_type": ("value could not be parsed to a boolean", "type_error.bool"),
    "string_type": ("str type expected", "type_error.str"),
    "dict_type": ("value is not a valid dict", "type_error.dict"),
    "model_type": ("value is not a valid dict", "type_error.dict"),
    "model_attributes_type": ("value is not a valid dict", "type_error.dict"),
    "list_type": ("value is not a valid list", "type_error.list"),
    "json_invalid": ("Expecting value", "value_error.jsondecode"),
    "url_parsing": ("invalid or missing URL scheme", "value_error.url.scheme"),
    "value_error": ("", "value_error"),
    "assertion_error": ("", "assertion_error"),
}


_V1_LIMITS: dict[str, tuple[str, str, str]] = {
    "greater_than_equal": ("ge", "greater than or equal to", "value_error.number.not_ge"),
    "greater_than": ("gt", "greater than", "value_error.number.not_gt"),
    "less_than_equal": ("le", "less than or equal to", "value_error.number.not_le"),
    "less_than": ("lt", "less than", "value_error.number.not_lt"),
}


def v1_error(error: dict[str, Any]) -> dict[str, Any]:
    """Translate one pydantic-2 error into the pydantic-1 shape Provena's services emit."""
    kind = str(error.get("type", ""))
    message, v1_type = _V1_ERRORS.get(kind, (str(error.get("msg", "")), f"value_error.{kind}"))
    out: dict[str, Any] = {
        "loc": list(error.get("loc", ())),
        "msg": message or str(error.get("msg", "")),
        "type": v1_type,
    }
    context = error.get("ctx") or {}
    if kind in ("value_error", "assertion_error"):
        out["msg"] = (
            str(error.get("msg", "")).removeprefix("Value error, ").removeprefix("Assertion failed, ")
        )
        if out["msg"].startswith("value is not a valid email address"):
            out["msg"], out["type"] = "value is not a valid email address", "value_error.email"
    if kind == "enum":
        expected = str(context.get("expected", ""))
        values = [
            part.strip().strip("'") for part in expected.replace(" or ", ", ").split(",") if part.strip()
        ]
        out["msg"] = "value is not a valid enumeration member; permitted: " + ", ".join(
            f"'{v}'" for v in values
        )
        out["type"] = "type_error.enum"
        out["ctx"] = {"enum_values": values}
    if kind in _V1_LIMITS:
        key, words, out["type"] = _V1_LIMITS[kind]
        out["msg"] = f"ensure this value is {words} {context.get(key)}"
        out["ctx"] = {"limit_value": context.get(key)}
    return out


def _context_text(context: dict[str, Any], enum: type[enum.Enum] | None) -> str:
    """pydantic 1 appends `; key=value` for each context entry, the value as str() renders it:
    enum values as the members' reprs, since pydantic 1 keeps the members there."""
    parts = []
    for key, value in context.items():
        if key == "enum_values" and enum is not None:
            value = list(enum)
        parts.append(f"; {key}={value}")
    return "".join(parts)


def v1_dump(model: type[BaseModel], errors: list[dict[str, Any]]) -> str:
    """pydantic-1's str(ValidationError), which Provena puts into soft-failure details."""
    lines = [f"{len(errors)} validation error{'s' if len(errors) != 1 else ''} for {model.__name__}"]
    for error in errors:
        converted = v1_error(error)
        lines.append(" -> ".join(str(part) for part in converted["loc"]) or "__root__")
        found = _annotation_at(model, tuple(converted["loc"]))
        enum_type = found if isinstance(found, type) and issubclass(found, enum.Enum) else None
        context = _context_text(converted.get("ctx") or {}, enum_type)
        lines.append(f"  {converted['msg']} (type={converted['type']}{context})")
    return "\n".join(lines)


def _unwrapped(annotation: Any, step: str | int | None = None) -> Any:
    """The type a location step leads into: Optional/Union to its model member, list items, dict values."""
    origin, arguments = typing.get_origin(annotation), typing.get_args(annotation)
    if origin in (typing.Union, types.UnionType):
        members = [a for a in arguments if a is not type(None)]
        models = [a for a in members if isinstance(a, type) and issubclass(a, BaseModel)]
        return _unwrapped((models or members or [annotation])[0], step)
    if step is not None and origin in (list, tuple, set, frozenset) and arguments:
        return arguments[0]
    if step is not None and origin is dict and len(arguments) == 2:
        return arguments[1]
    return annotation


def _annotation_at(annotation: Any, steps: tuple[Any, ...]) -> Any:
    """The type an error location leads to inside `annotation`; None when a step names no field."""
    for step in steps:
        current = _unwrapped(annotation)
        if isinstance(step, str) and isinstance(current, type) and issubclass(current, BaseModel):
            if step not in current.model_fields:
                return None
            annotation = current.model_fields[step].annotation
        else:
            annotation = _unwrapped(current, step)
    return _unwrapped(annotation)


def _names_a_model(request: Request, loc: tuple[Any, ...]) -> bool:
    """Whether a body error's location is a model itself, not one of its fields: pydantic 1 reports a
    model validator's failure at `<model> -> __root__`, pydantic 2 at the model."""
    field = getattr(request.scope.get("route"), "body_field", None)
    if field is None or not loc or loc[0] != "body":
        return False
    final = _annotation_at(field.field_info.annotation, loc[1:])
    return isinstance(final, type) and issubclass(final, BaseModel)


async def _json_error(request: Request) -> dict[str, Any]:
    """pydantic 1's body for JSON that does not decode: the JSONDecodeError's words and position."""
    try:
        json.loads(await request.body())
    except json.JSONDecodeError as exc:
        return {
            "loc": ["body", exc.pos],
            "msg": f"{exc.msg}: line {exc.lineno} column {exc.colno} (char {exc.pos})",
            "type": "value_error.jsondecode",
            "ctx": {"msg": exc.msg, "doc": exc.doc, "pos": exc.pos, "lineno": exc.lineno, "colno": exc.colno},
        }
    except UnicodeDecodeError:
        pass
    return {"loc": ["body"], "msg": "Expecting value", "type": "value_error.jsondecode"}


def _as_pydantic1_model_input(raw: bytes) -> bytes | None:
    """The body pydantic 1 would validate when a model is expected but JSON of another kind came:
    it tries `dict(value)`, so `[]` and `""` are `{}` and a list of pairs is a mapping. None: leave it."""
    try:
        value = json.loads(raw)
    except (ValueError, UnicodeDecodeError):
        return None
    if value is None or isinstance(value, dict):
        return None
    try:
        return json.dumps(dict(value)).encode()
    except (TypeError, ValueError):
        return None


class Pydantic1BodyRoute(APIRoute):
    """A route that reads a model body as FastAPI on pydantic 1 does (see _as_pydantic1_model_input)."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()
        field = self.body_field
        expected = _unwrapped(field.field_info.annotation) if field is not None else None
        if not (isinstance(expected, type) and issubclass(expected, BaseModel)):
            return handler

        async def coerced(request: Request) -> Response:
            replacement = _as_pydantic1_model_input(await request.body())
            if replacement is not None:
                request._body = replacement  # Starlette's cache, which FastAPI's body reading uses
            return await handler(request)

        return coerced


def install_error_handlers(app: FastAPI) -> None:
    async def on_validation_error(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, RequestValidationError)
        details = []
        for error in exc.errors():
            if error.get("type") == "json_invalid":
                details.append(await _json_error(request))
                continue
            converted = v1_error(dict(error))
            if converted["type"] in ("value_error", "assertion_error") and _names_a_model(
                request, tuple(error.get("loc", ()))
            ):
                converted["loc"] = [*converted["loc"], "__root__"]
            details.append(converted)
        return JSONResponse(status_code=422, content={"detail": details})

    async def on_internal_error(_: Request, exc: Exception) -> PlainTextResponse:
        return PlainTextResponse("Internal Server Error", status_code=500)

    app.add_exception_handler(RequestValidationError, on_validation_error)
    app.add_exception_handler(InternalError, on_internal_error)


def realm_of(request: Request) -> Realm:
    realm: Realm = request.app.state.sandbox.realm
    return realm


def identify(request: Request) -> Identity:
    header = request.headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token:
        raise unauthorised(NOT_AUTHENTICATED)
    try:
        return realm_of(request).verify(token.strip())
    except TokenError as exc:
        raise unauthorised(exc.detail) from exc


def require_roles(*roles: str) -> Callable[[Request], Awaitable[Identity]]:
    """A dependency: valid token carrying *all* of `roles` (Provena's tiered READ/WRITE/ADMIN)."""

    async def dependency(request: Request) -> Identity:
        identity = identify(request)
        if not set(roles).issubset(identity.roles):
            raise unauthorised(MISSING_ROLE)
        return identity

    return dependency


def user_json(identity: Identity) -> dict[str, Any]:
    return {
        "username": identity.username,
        "email": identity.email,
        "roles": identity.roles,
        "access_token": identity.token,
    }


Dependency = Callable[[Request], Awaitable[Identity]]


def add_check_access_routes(
    router: APIRouter, read: Dependency, write: Dependency, admin: Dependency
) -> None:
    """/check-access/check-{general,read,write,admin}-access, answering the caller as Provena's `User`."""

    async def general_check(request: Request) -> Identity:
        return identify(request)

    for level, dependency in (("general", general_check), ("read", read), ("write", write), ("admin", admin)):

        def make(dependency: Dependency = dependency) -> Callable[[Request], Awaitable[JSONResponse]]:
            async def check(request: Request) -> JSONResponse:
                return JSONResponse(user_json(await dependency(request)))

            return check

        router.get(f"/check-access/check-{level}-access")(make())
