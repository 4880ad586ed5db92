"""The pages through aiohttp's client (no browser): who lands where, the 403 page, the unit's
steps through the unit API (退单 included), the language choice."""
from __future__ import annotations

import re

from callcenter.pages import i18n
from callcenter.workorders.models import WorkOrder
from tests.pages.conftest import LANDING, PASSWORDS


async def sign_in(client, username: str) -> str:
    """Log in (the cookie a browser gets); the CSRF token the pages carry."""
    response = await client.post("/api/login", json={"username": username, "password": PASSWORDS[username]})
    assert response.status == 200, await response.text()
    return str((await response.json())["csrf_token"])


async def test_every_role_lands_on_its_own_page(aiohttp_client, hotline) -> None:
    for username, target in LANDING.items():
        client = await aiohttp_client(hotline.app)
        await sign_in(client, username)
        response = await client.get("/", allow_redirects=False)
        assert (response.status, response.headers["Location"]) == (302, target), username
        page = await client.get(target)
        assert page.status == 200 and page.content_type == "text/html", username
        await client.close()


async def test_a_page_of_another_role_is_a_chinese_403_page_and_apis_stay_json(aiohttp_client, hotline) -> None:
    client = await aiohttp_client(hotline.app)
    await sign_in(client, "repair")
    page = await client.get("/orders")
    assert page.status == 403 and page.content_type == "text/html"
    text = await page.text()
    assert "您的角色无权打开此页面" in text and 'href="/"' in text and "not allowed" not in text
    api = await client.get("/api/orders")
    assert api.status == 403 and api.content_type == "application/json"


async def test_the_unit_page_lists_only_its_own_orders_with_the_running_deadlines(aiohttp_client, hotline) -> None:
    client = await aiohttp_client(hotline.app)
    await sign_in(client, "repair")
    text = await (await client.get("/unit")).text()
    assert f'id="order-{hotline.orders["leak"]}"' in text and f'id="order-{hotline.orders["cover"]}"' in text
    assert f'id="order-{hotline.orders["meter"]}"' not in text       # another unit's
    assert "到场时限" in text and "答复时限" in text and "data-deadline=" in text
    assert re.search(r"剩 \d 个工作日|今日到期", text)


async def test_the_unit_returns_an_order_with_a_reason_through_the_unit_api(aiohttp_client, hotline, sessionmaker) -> None:
    client = await aiohttp_client(hotline.app)
    csrf = await sign_in(client, "repair")
    order_id = hotline.orders["cover"]
    no_reason = await client.post(f"/api/unit/orders/{order_id}/return", json={}, headers={"X-CSRF-Token": csrf})
    assert no_reason.status == 400 and "reason" in (await no_reason.json())["error"]
    card = await client.post(f"/unit/orders/{order_id}/return", json={"reason": "井盖属市政管理，非我单位"},
                             headers={"X-CSRF-Token": csrf})
    assert card.status == 200 and "已受理" in await card.text()
    async with sessionmaker() as session:
        assert (await session.get(WorkOrder, order_id)).state == "accepted"
    history = await (await client.get(f"/api/orders/{order_id}")).json()
    assert history["history"][-1]["event"] == "send_back"
    assert history["history"][-1]["reason"] == "井盖属市政管理，非我单位"


async def test_a_step_that_does_not_fit_shows_the_apis_reason_in_the_card(aiohttp_client, hotline) -> None:
    client = await aiohttp_client(hotline.app)
    csrf = await sign_in(client, "repair")
    card = await client.post(f"/unit/orders/{hotline.orders['leak']}/arrive", json={}, headers={"X-CSRF-Token": csrf})
    text = await card.text()
    assert card.status == 200 and "未完成" in text and "does not fit" in text


async def test_another_units_order_is_not_found_from_the_unit_page(aiohttp_client, hotline) -> None:
    client = await aiohttp_client(hotline.app)
    csrf = await sign_in(client, "repair")
    response = await client.post(f"/unit/orders/{hotline.orders['meter']}/acknowledge", json={},
                                 headers={"X-CSRF-Token": csrf})
    assert response.status == 404


async def test_the_unit_page_without_the_csrf_token_changes_nothing(aiohttp_client, hotline) -> None:
    client = await aiohttp_client(hotline.app)
    await sign_in(client, "repair")
    response = await client.post(f"/unit/orders/{hotline.orders['leak']}/acknowledge", json={})
    assert response.status == 403


async def test_english_is_chosen_by_query_and_remembered(aiohttp_client, hotline) -> None:
    client = await aiohttp_client(hotline.app)
    await sign_in(client, "agent")
    assert "工单" in await (await client.get("/orders")).text()
    english = await client.get("/orders?lang=en")
    assert "Work orders" in await english.text() and english.cookies[i18n.COOKIE].value == "en"
    assert "Next deadline" in await (await client.get("/orders")).text()


async def test_the_chinese_catalogue_covers_every_word_of_the_pages() -> None:
    import io

    from babel.messages.extract import extract_from_dir

    found = {m[2] if isinstance(m[2], str) else m[2][0]
             for m in extract_from_dir(str(i18n.TEMPLATE_DIR.parent), method_map=[("**.py", "python"),
                                       ("**/templates/**.html", "jinja2")],
                                       options_map={"**/templates/**.html": {"trim_blocks": "true"}},
                                       keywords={"_": None, "N_": None, "ngettext": (1, 2)})}
    catalogue = i18n.translations("zh-CN")
    untranslated = sorted(m for m in found if catalogue.gettext(m) == m)
    assert not untranslated, untranslated
    del io


PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 64


def photo_form(data: bytes, filename: str, content_type: str = "image/png"):
    import io

    import aiohttp

    form = aiohttp.FormData()
    form.add_field("photo", io.BytesIO(data), filename=filename, content_type=content_type)
    return form


async def test_a_photo_is_stored_under_a_name_of_our_own_and_recorded_with_the_order(aiohttp_client, hotline,
                                                                                    sessionmaker, settings) -> None:
    from sqlalchemy import select

    from callcenter.workorders.models import OrderPhoto

    client = await aiohttp_client(hotline.app)
    csrf = await sign_in(client, "repair")
    order_id = hotline.orders["leak"]
    card = await client.post(f"/unit/orders/{order_id}/photo", data=photo_form(PNG, "../../../etc/passwd.png"),
                             headers={"X-CSRF-Token": csrf})
    assert card.status == 200 and "1 张照片" in await card.text()
    async with sessionmaker() as session:
        photo = (await session.execute(select(OrderPhoto).where(OrderPhoto.order_id == order_id))).scalar_one()
    assert re.fullmatch(rf"{order_id}/[0-9a-f]{{32}}\.png", photo.path) and photo.content_type == "image/png"
    stored = settings.paths.spool_dir / "photos" / photo.path
    assert stored.read_bytes() == PNG
    history = await (await client.get(f"/api/orders/{order_id}")).json()
    assert history["history"][-1]["event"] == "photo"
    served = await client.get(f"/orders/{order_id}/photos/{photo.id}")
    assert served.status == 200 and await served.read() == PNG and served.content_type == "image/png"
    other = await aiohttp_client(hotline.app)
    await sign_in(other, "meter")
    assert (await other.get(f"/orders/{order_id}/photos/{photo.id}")).status == 404   # another unit's order


async def test_a_photo_that_is_not_a_picture_or_too_large_is_refused_and_nothing_is_kept(aiohttp_client, hotline,
                                                                                        sessionmaker, settings) -> None:
    from sqlalchemy import func, select

    from callcenter.workorders import photos
    from callcenter.workorders.models import OrderPhoto

    client = await aiohttp_client(hotline.app)
    csrf = await sign_in(client, "repair")
    order_id = hotline.orders["leak"]
    for data, name, why in ((b"#!/bin/sh\nrm -rf /\n", "photo.jpg", "not a JPEG or PNG"),
                            (PNG + b"\x00" * photos.MAX_BYTES, "big.png", "larger than 5 MB")):
        card = await client.post(f"/unit/orders/{order_id}/photo", data=photo_form(data, name, "image/jpeg"),
                                 headers={"X-CSRF-Token": csrf})
        assert card.status == 200 and why in await card.text()
    async with sessionmaker() as session:
        assert (await session.execute(select(func.count()).select_from(OrderPhoto))).scalar_one() == 0
    assert not list((settings.paths.spool_dir / "photos").rglob("*.*"))


async def test_the_reviewer_lands_on_their_inbox_of_assigned_calls(aiohttp_client, hotline, sessionmaker) -> None:
    from datetime import UTC, datetime

    from callcenter.qa.models import Assignment

    async with sessionmaker() as session, session.begin():
        session.add(Assignment(call_id="call-leak", reviewer="qa", week="2026-W49", reason="sample", agent_id="1001",
                               assigned_at=datetime.now(UTC)))
        session.add(Assignment(call_id="call-cover", reviewer="someone-else", week="2026-W49", reason="sample",
                               agent_id="1001", assigned_at=datetime.now(UTC)))
    client = await aiohttp_client(hotline.app)
    await sign_in(client, "qa")
    text = await (await client.get("/qa")).text()
    assert "我的待检通话" in text and "共 1 通" in text and "call-lea" in text and "call-cov" not in text
    assert "未评分" in text
