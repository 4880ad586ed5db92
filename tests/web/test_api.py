"""The input checks of `web/api.py` on a small app of their own: what reaches a handler, what
is refused and how the refusal names the field; the allow marker survives the decorator."""
from __future__ import annotations

from typing import Annotated

from aiohttp import web
from pydantic import Field

from callcenter.web import access, api


class Filter(api.Query):
    queue: list[api.Name] = Field(default_factory=list)
    limit: api.Limit = 50
    since: api.Day | None = Field(None, alias="from")


class Item(api.Path):
    item_id: api.Id


class Note(api.Body):
    text: Annotated[str, api.text(20, min_length=1)]
    at: api.Moment | None = None


@access.public
@api.route(query=Filter, responses={200: None})
async def listing(request: web.Request, query: Filter) -> web.Response:
    return web.json_response({"queue": query.queue, "limit": query.limit,
                              "from": query.since.isoformat() if query.since else None})


@api.route(path=Item, body=Note, form=True)
@access.public
async def note(request: web.Request, path: Item, body: Note) -> web.Response:
    return web.json_response({"item": path.item_id, "text": body.text})


def small_app() -> web.Application:
    app = web.Application(client_max_size=1024)
    app.router.add_get("/items", listing)
    app.router.add_post(r"/items/{item_id}", note)
    return app


def test_the_marker_survives_either_order() -> None:
    assert access.is_public(listing) and access.is_public(note)
    assert api.route_of(listing) is not None and api.route_of(note) is not None


async def test_queries_take_lists_bounds_and_aliases(aiohttp_client) -> None:
    client = await aiohttp_client(small_app())
    r = await client.get("/items?queue=leak&queue=billing&limit=7&from=2026-11-23&tracker=x")
    assert await r.json() == {"queue": ["leak", "billing"], "limit": 7, "from": "2026-11-23"}
    assert (await (await client.get("/items?limit=&from=")).json())["limit"] == 50   # empty is not given
    r = await client.get("/items?limit=1&limit=2")
    assert r.status == 400 and await r.json() == {"error": "limit: given more than once",
                                                  "fields": [{"field": "limit", "error": "given more than once"}]}
    r = await client.get("/items?from=1999-12-31&limit=501")
    assert r.status == 400 and {f["field"] for f in (await r.json())["fields"]} == {"from", "limit"}


async def test_bodies_and_paths_are_refused_naming_the_field(aiohttp_client) -> None:
    client = await aiohttp_client(small_app())
    assert (await (await client.post("/items/3", json={"text": "ok"})).json()) == {"item": 3, "text": "ok"}
    assert (await (await client.post("/items/3", data={"text": "form"})).json())["text"] == "form"
    r = await client.post("/items/99999999999999999999", json={"text": "ok"})
    assert r.status == 404 and (await r.json())["fields"][0]["field"] == "item_id"
    cases = [(b"{bad", "body"), (b"[1,2]", "body"), (b'"x"', "body"), (b"", "text"),
             (b'{"text": 5}', "text"), (b'{"text": "a\\u0000b"}', "text"), (b'{"text": "ok", "more": 1}', "more"),
             (b'{"text": "ok", "at": "2026-11-23T08:00:00+15:00"}', "at"),
             (b'{"text": "ok", "at": "9999-12-31T00:00:00+08:00"}', "at")]
    for raw, field in cases:
        r = await client.post("/items/3", data=raw, headers={"Content-Type": "application/json"})
        assert r.status == 400, raw
        body = await r.json()
        assert body["fields"][0]["field"] == field and body["error"].startswith(f"{field}: "), raw
    r = await client.post("/items/3", data=b'{"text": "' + b"x" * 2000 + b'"}',
                          headers={"Content-Type": "application/json"})
    assert r.status == 413 and (await r.json())["fields"][0]["field"] == "body"
