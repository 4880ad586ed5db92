"""Every route's input, checked against a pydantic model, and the API published from those models.

A handler says what it takes and what it answers; the decorator parses and checks the input
before the handler runs, and hands the parsed models over as keyword arguments:

    @access.allow(AGENT, SUP, ADMIN)
    @api.route(query=OrderQuery, responses={200: OrderList}, summary="The latest work orders")
    async def list_orders(request: web.Request, query: OrderQuery) -> web.Response: ...

`path=` is given as ``path``, `query=` as ``query``, `body=` as ``body`` (to a handler that has a
parameter of that name: one that reads its path itself still has it checked first).

The rule for refusals (one for every route):
- 400: the query or the body is not what the route's model takes (not JSON, not an object, a
  missing or unknown field, a wrong type, a value out of its bounds). Always 400, never 422: a
  client cannot tell "well-formed" from "meaningful" any better than we can, and one status is
  one rule to test.
- 404: a path parameter that cannot name anything (an id beyond the database column, a call
  id that is not a uuid): such a thing does not exist.
- 413: a body beyond the app's ``client_max_size``.
Each answer is ``{"error": "<field>: <message>", "fields": [{"field": ..., "error": ...}]}``.
An empty query parameter (``?channel=``) counts as not given.

Markers: `access.allow`/`access.public` may sit above or below `route`; the wrapper keeps the
marker on itself (it copies the handler's attributes and has no ``__wrapped__``, which
`access._unwrap` would follow to a function without the marker).

The OpenAPI 3.1 document (GET /api/openapi.json, for any signed-in role: it lists what each
role may call, which is no secret to a user but no business of an anonymous caller) is built
with apispec from the models' JSON schemas, walking `app.router` so that every route is
listed, each with ``x-roles``. apispec rather than aiohttp-pydantic, whose class-based views
would rewrite every handler and hide our allow markers, or spectree, which brings its own
validation layer and error format: apispec only assembles the document, pydantic does the rest.
"""
from __future__ import annotations

import datetime as dt
import functools
import inspect
import json
import re
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from types import NoneType, UnionType
from typing import TYPE_CHECKING, Annotated, Any, Literal, Union, get_args, get_origin

from aiohttp import web
from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    ValidationError,
    WithJsonSchema,
)

from callcenter.web import access
from callcenter.workdays import UTC_OFFSETS

if TYPE_CHECKING:
    from apispec import APISpec

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
ROUTE = "__callcenter_api_route__"
OPENAPI_PATH = "/api/openapi.json"
FORM_TYPES = ("application/x-www-form-urlencoded", "multipart/form-data")

# ------------------------------------------------------------------ models and bounded values


class Body(BaseModel):
    """A JSON body: unknown fields are refused (a field we ignore would be a silent surprise), and
    values are taken as JSON gives them (strict: no "5" for 5, no true for 1)."""

    model_config = ConfigDict(extra="forbid", strict=True, allow_inf_nan=False, populate_by_name=True)


class Query(BaseModel):
    """A query string: unknown parameters are ignored (cache-busters, trackers)."""

    model_config = ConfigDict(extra="ignore", allow_inf_nan=False, populate_by_name=True)


class Path(BaseModel):
    model_config = ConfigDict(extra="ignore", allow_inf_nan=False)


class Answer(BaseModel):
    """A response: the fields we promise; more may come."""

    model_config = ConfigDict(extra="allow")


class FieldError(BaseModel):
    field: str
    error: str


class Problem(Answer):
    """Every refusal: what went wrong, naming the field."""

    error: str
    fields: list[FieldError] = []


MAX_INT = 2**31 - 1            # an INTEGER column, on SQLite and PostgreSQL alike
# The input layer's years (reports and deadlines keep to workdays.py's 2000-2099 on their own).
FIRST_YEAR, LAST_YEAR = 2000, 2100
MIN_OFFSET, MAX_OFFSET = UTC_OFFSETS   # the zones there are

Id = Annotated[int, Field(ge=1, le=MAX_INT)]
Count = Annotated[int, Field(ge=0, le=MAX_INT)]
Limit = Annotated[int, Field(ge=1, le=500)]
Offset = Annotated[int, Field(ge=0, le=MAX_INT)]

_ONE_LINE = r"^[^\x00-\x1f\x7f]*$"          # no control characters at all
_LINES = r"^[^\x00-\x08\x0b\x0c\x0e-\x1f\x7f]*$"   # tab, LF and CR allowed


def text(max_length: int, *, min_length: int = 0, multiline: bool = False) -> StringConstraints:
    """Text bounded in length, without control characters (multi-line: tab and newlines allowed):
    ``Annotated[str, api.text(80)]``."""
    return StringConstraints(min_length=min_length, max_length=max_length, pattern=_LINES if multiline else _ONE_LINE)


Name = Annotated[str, text(64, min_length=1)]       # ids and names as the settings spell them
Line = Annotated[str, text(500)]                    # a reason, a result, a cause: one line
Paragraph = Annotated[str, text(4000, multiline=True)]   # a description, notes, a comment
Secret = Annotated[str, text(256, min_length=1)]
Target = Annotated[str, text(2000)]                 # where a page goes next


def _in_years(value: dt.date) -> dt.date:
    if not FIRST_YEAR <= value.year <= LAST_YEAR:
        raise ValueError(f"a year from {FIRST_YEAR} to {LAST_YEAR}")
    return value


def _moment(value: dt.datetime) -> dt.datetime:
    _in_years(value)
    offset = value.utcoffset()
    if offset is not None and not MIN_OFFSET <= offset <= MAX_OFFSET:
        raise ValueError("a UTC offset that a real time zone has, from -12:00 to +14:00")
    return value


_YEAR = r"(20\d\d|2100)"
_WEEK = rf"^{_YEAR}-W(0[1-9]|[1-4]\d|5[0-3])$"
_MONTH = rf"^{_YEAR}-(0[1-9]|1[0-2])$"


def _iso_week(value: str) -> str:
    if not re.fullmatch(_WEEK, value):
        raise ValueError(f"{value!r} is not an ISO week of {FIRST_YEAR}-{LAST_YEAR}; expected e.g. 2026-W47")
    year, week = (int(part) for part in value.split("-W"))
    try:
        dt.date.fromisocalendar(year, week, 1)
    except ValueError:
        raise ValueError(f"{year} has no ISO week {week}") from None
    return value


def _month(value: str) -> str:
    if not re.fullmatch(_MONTH, value):
        raise ValueError(f"{value!r} is not a month of {FIRST_YEAR}-{LAST_YEAR}; expected e.g. 2026-11")
    return value


Day = Annotated[dt.date, AfterValidator(_in_years)]
Moment = Annotated[dt.datetime, AfterValidator(_moment)]
"""A time with its UTC offset (or none: the route says what a bare time means), years FIRST_YEAR-LAST_YEAR."""
Week = Annotated[str, AfterValidator(_iso_week), WithJsonSchema({"type": "string", "pattern": _WEEK})]
Month = Annotated[str, AfterValidator(_month), WithJsonSchema({"type": "string", "pattern": _MONTH})]


class Empty(Body):
    """No body, or ``{}``."""


# ------------------------------------------------------------------ the decorator


@dataclass(frozen=True)
class Route:
    summary: str
    query: type[Query] | None = None
    body: type[BaseModel] | None = None
    path: type[Path] | None = None
    form: bool = False        # the body may also come as an HTML form
    responses: Mapping[int, Any] = field(default_factory=dict)   # status -> model, None or a media type


def route(*, summary: str = "", query: type[Query] | None = None, body: type[BaseModel] | None = None,
          path: type[Path] | None = None, form: bool = False,
          responses: Mapping[int, Any] | None = None,
          ) -> Callable[[Callable[..., Awaitable[web.StreamResponse]]], Handler]:
    """Check the route's input before the handler runs; pass the models as path=, query=, body=."""

    def wrap(handler: Callable[..., Awaitable[web.StreamResponse]]) -> Handler:
        spec = Route(summary or (handler.__doc__ or handler.__name__).strip().splitlines()[0], query, body, path,
                     form, dict(responses or {200: None}))

        takes = set(inspect.signature(handler).parameters)   # a handler may leave out a model it needs not read

        @functools.wraps(handler)
        async def validated(request: web.Request) -> web.StreamResponse:
            given: dict[str, Any] = {}
            if path is not None:
                given["path"] = _checked(path, dict(request.match_info), web.HTTPNotFound, "path")
            if query is not None:
                given["query"] = _checked(query, _query_input(query, request), web.HTTPBadRequest, "query")
            if body is not None:
                given["body"] = await _body(request, body, form)
            return await handler(request, **{k: v for k, v in given.items() if k in takes})

        validated.__dict__.pop("__wrapped__", None)   # access._unwrap must stop here, at the marker
        setattr(validated, ROUTE, spec)
        return validated

    return wrap


def route_of(handler: Any) -> Route | None:
    return getattr(handler, ROUTE, None)


def _problem(kind: type[web.HTTPException], fields: list[tuple[str, str]]) -> web.HTTPException:
    message = "; ".join(f"{name}: {error}" for name, error in fields)
    body = {"error": message, "fields": [{"field": name, "error": error} for name, error in fields]}
    return kind(text=json.dumps(body, ensure_ascii=False), content_type="application/json")


def refuse(name: str, error: str, kind: type[web.HTTPException] = web.HTTPBadRequest) -> web.HTTPException:
    """A refusal in the same shape, for a check a handler makes itself."""
    return _problem(kind, [(name, error)])


def _field_errors(exc: ValidationError, where: str) -> list[tuple[str, str]]:
    found = []
    for error in exc.errors(include_url=False, include_input=False):
        loc = ".".join(str(part) for part in error["loc"]) or where
        message = error["msg"]
        if error["type"] == "json_invalid":
            message = f"not JSON ({message.removeprefix('Invalid JSON: ')})"
        elif error["type"] == "model_type":
            message = "must be a JSON object"
        elif error["type"] == "extra_forbidden":
            message = "unknown field"
        elif error["type"] == "string_pattern_mismatch" and error.get("ctx", {}).get("pattern") in (_ONE_LINE, _LINES):
            message = "control characters are not allowed here"
        found.append((loc, message.removeprefix("Value error, ")))
    return found


def _checked(model: type[BaseModel], data: Any, kind: type[web.HTTPException], where: str) -> Any:
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise _problem(kind, _field_errors(exc, where)) from None


def _is_list(annotation: Any) -> bool:
    if get_origin(annotation) is Annotated:
        return _is_list(get_args(annotation)[0])
    if get_origin(annotation) in (Union, UnionType):
        return any(_is_list(a) for a in get_args(annotation) if a is not NoneType)
    return get_origin(annotation) in (list, tuple, set, frozenset)


def _query_input(model: type[Query], request: web.Request) -> dict[str, Any]:
    data: dict[str, Any] = {}
    for name, info in model.model_fields.items():
        key = info.alias or name
        values = [v for v in request.query.getall(key, []) if v != ""]
        if not values:
            continue
        if _is_list(info.annotation):
            data[key] = values
        elif len(values) > 1:
            raise _problem(web.HTTPBadRequest, [(key, "given more than once")])
        else:
            data[key] = values[0]
    return data


async def _body(request: web.Request, model: type[BaseModel], form: bool) -> Any:
    try:
        if form and request.content_type in FORM_TYPES:
            return _checked(model, {k: v for k, v in (await request.post()).items()}, web.HTTPBadRequest, "body")
        raw = await request.read() if request.body_exists else b""
    except web.HTTPRequestEntityTooLarge:
        message = "larger than a request may be"
        raise web.HTTPRequestEntityTooLarge(
            max_size=0, actual_size=request.content_length or 0, content_type="application/json",
            text=json.dumps({"error": f"body: {message}", "fields": [{"field": "body", "error": message}]})) from None
    try:
        return model.model_validate_json(raw.strip() or b"{}")
    except ValidationError as exc:
        raise _problem(web.HTTPBadRequest, _field_errors(exc, "body")) from None


# ------------------------------------------------------------------ the OpenAPI document

OPENAPI = web.AppKey("openapi", dict)
_PLACEHOLDER = re.compile(r"\{([^}:]+)(?::[^}]*)?\}")
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


def _register(spec: APISpec, model: type[BaseModel], mode: Literal["validation", "serialization"]) -> dict[str, Any]:
    schema = model.model_json_schema(ref_template="#/components/schemas/{model}", mode=mode)
    for name, sub in schema.pop("$defs", {}).items():
        if name not in spec.components.schemas:
            spec.components.schema(name, sub)
    name = model.__name__
    known = spec.components.schemas.get(name)
    if known is None:
        spec.components.schema(name, schema)
    elif known != schema:
        raise ValueError(f"two models named {name} in the API")
    return {"$ref": f"#/components/schemas/{name}"}


def _parameters(spec: APISpec, model: type[BaseModel], where: str) -> list[dict[str, Any]]:
    schema = model.model_json_schema(ref_template="#/components/schemas/{model}")
    for name, sub in schema.pop("$defs", {}).items():
        if name not in spec.components.schemas:
            spec.components.schema(name, sub)
    required = set(schema.get("required", ()))
    params = []
    for name, prop in schema.get("properties", {}).items():
        prop = _without_null(dict(prop))
        description = prop.pop("description", None)
        param: dict[str, Any] = {"name": name, "in": where, "required": where == "path" or name in required,
                                 "schema": prop}
        if description:
            param["description"] = description
        if where == "query" and prop.get("type") == "array":
            param.update(style="form", explode=True)
        params.append(param)
    return params


def _without_null(prop: dict[str, Any]) -> dict[str, Any]:
    """An optional parameter is one left out, never a null: drop the null branch pydantic adds."""
    branches = [b for b in prop.get("anyOf", []) if b != {"type": "null"}]
    if "anyOf" in prop and len(branches) < len(prop["anyOf"]):
        del prop["anyOf"]
        prop = {**(branches[0] if len(branches) == 1 else {"anyOf": branches}), **prop}
    if prop.get("default", ...) is None:
        del prop["default"]
    return prop


def _response(spec: APISpec, what: Any, description: str) -> dict[str, Any]:
    if what is None:
        return {"description": description}
    if isinstance(what, str | tuple):   # media types: HTML, CSV, audio …
        types = (what,) if isinstance(what, str) else what
        return {"description": description, "content": {t: {"schema": {"type": "string"}} for t in types}}
    return {"description": description, "content": {"application/json": {"schema": _register(spec, what,
                                                                                                "serialization")}}}


STATUS_TEXT = {200: "Done", 201: "Created", 204: "No content", 206: "Part of the file", 302: "Go there",
               400: "The input is not what this route takes (the field is named)", 401: "Sign in first",
               403: "Not allowed for your role, or missing CSRF token", 404: "Not found",
               409: "Does not fit the current state", 410: "Gone", 413: "The body is too large",
               416: "Range not satisfiable", 429: "Too many tries", 503: "A part of the hotline is down"}


def build_openapi(app: web.Application) -> dict[str, Any]:
    """The OpenAPI 3.1 document of every route in `app.router`."""
    from apispec import APISpec  # only when the document is asked for: serving calls needs none of it
    spec = APISpec(title="callcenter hotline API", version="1", openapi_version="3.1.0",
                   info={"description": __doc__.split("\n\n")[0] if __doc__ else ""})
    spec.components.security_scheme("bearer", {"type": "http", "scheme": "bearer",
                                               "description": "an API token (field units, scripts)"})
    spec.components.security_scheme("session", {"type": "apiKey", "in": "cookie", "name": "cc_session",
                                                "description": "the page log-in's cookie"})
    spec.components.security_scheme("csrf", {"type": "apiKey", "in": "header", "name": "X-CSRF-Token",
                                             "description": "with the cookie, on every change"})
    paths: dict[str, dict[str, Any]] = {}
    for resource in app.router.resources():
        info = resource.get_info()
        template = info.get("formatter") or info.get("path") or resource.canonical
        if "prefix" in info and "formatter" not in info:   # a static folder
            template = f"{info['prefix']}/{{filename}}"
        for r in resource:
            if r.method == "HEAD" or r.method == "*":
                continue
            paths.setdefault(template, {})[r.method.lower()] = _operation(spec, template, r.method, r.handler)
    for template, operations in paths.items():
        spec.path(template, operations=operations)
    return spec.to_dict()


def _operation(spec: APISpec, template: str, method: str, handler: Any) -> dict[str, Any]:
    api_route = route_of(handler) or Route(((handler.__doc__ or handler.__name__).strip().splitlines() or [""])[0])
    public = access.is_public(handler)
    roles = ["public"] if public else sorted(access.allowed_roles(handler))
    operation: dict[str, Any] = {"summary": api_route.summary, "operationId": f"{method.lower()} {template}",
                                 "x-roles": roles, "parameters": []}
    if api_route.path is not None:
        operation["parameters"] += _parameters(spec, api_route.path, "path")
    else:
        operation["parameters"] += [{"name": name, "in": "path", "required": True, "schema": {"type": "string"}}
                                    for name in _PLACEHOLDER.findall(template)]
    if api_route.query is not None:
        operation["parameters"] += _parameters(spec, api_route.query, "query")
    if not operation["parameters"]:
        del operation["parameters"]
    if api_route.body is not None:
        schema = _register(spec, api_route.body, "validation")
        content = {"application/json": {"schema": schema}}
        if api_route.form:
            content["application/x-www-form-urlencoded"] = {"schema": schema}
        required = bool(api_route.body.model_json_schema().get("required"))
        operation["requestBody"] = {"required": required, "content": content}
    responses = dict(api_route.responses)
    refusals = {400: api_route.query is not None or api_route.body is not None,
                401: not public, 403: not public, 404: api_route.path is not None,
                413: api_route.body is not None}
    for status, applies in refusals.items():
        if applies:
            responses.setdefault(status, Problem)
    operation["responses"] = {str(status): _response(spec, what, STATUS_TEXT.get(status, "See the summary"))
                              for status, what in sorted(responses.items())}
    if public:
        operation["security"] = []
    elif method in SAFE_METHODS:
        operation["security"] = [{"bearer": []}, {"session": []}]
    else:
        operation["security"] = [{"bearer": []}, {"session": [], "csrf": []}]
    return operation


@access.allow(*access.ROLES)
@route(summary="This document: every route, its input, its answers and the roles that may call it",
       responses={200: "application/json"})
async def openapi_document(request: web.Request) -> web.Response:
    cache = request.app[OPENAPI]
    if "document" not in cache:
        cache["document"] = build_openapi(request.app)
    return web.json_response(cache["document"])


def setup_routes(app: web.Application) -> None:
    app[OPENAPI] = {}
    app.router.add_get(OPENAPI_PATH, openapi_document)
