"""The agents' phones as Asterisk tells them: ContactStatus and PJSIPShowEndpoints parsed at the
edge, each AOR's contacts kept (pure), the qualify settings rendered into pjsip.conf, and the
engine on the fake AMI telling the ACD (an unregistered phone's agent is not rung)."""
from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable

import pytest

from callcenter.ami.events import ENGINE_EVENTS, ContactStatus, EndpointList, parse_event
from callcenter.ami.gateway import contact_uris, phone_reachable
from callcenter.asterisk_config import manager_conf, pjsip_conf
from callcenter.calls.phones import ContactBook
from callcenter.config import ConfigError, Settings, load_settings
from tests.calls.fake_line import FakeLine, agent, running_line

URI = "sip:1005@127.0.0.1:5075;ob"


def test_contact_status_and_endpoint_list_are_parsed_and_let_through() -> None:
    event = parse_event({"Event": "ContactStatus", "URI": URI, "ContactStatus": "Removed", "AOR": "1005",
                         "EndpointName": "1005", "RoundtripUsec": "0"})
    assert event == ContactStatus("1005", URI, "Removed", "1005")
    listed = parse_event({"Event": "EndpointList", "ActionID": "x", "ObjectType": "endpoint", "ObjectName": "1005",
                          "DeviceState": "Not in use", "Contacts": f"1005/{URI},"})
    assert listed == EndpointList("x", "1005", "Not in use", f"1005/{URI},")
    assert {"ContactStatus", "EndpointList", "EndpointListComplete"} <= set(ENGINE_EVENTS)


@pytest.mark.parametrize(("state", "contacts", "there"), [
    ("Not in use", f"1005/{URI},", True),
    ("In use", f"1005/{URI},", True),
    ("Unavailable", f"1005/{URI},", False),      # every contact failed qualify
    ("Not in use", "", False),                   # nothing registered
    ("Invalid", "", False),
])
def test_an_endpoint_is_reachable_with_a_contact_that_is_not_unavailable(state: str, contacts: str, there: bool) -> None:
    item = EndpointList("", "1005", state, contacts)
    assert phone_reachable(item) is there
    assert contact_uris(item) == ((URI,) if contacts else ())


def test_the_contact_book_follows_each_contact() -> None:
    book = ContactBook()
    assert book.contact_changed("1005", URI, "Created") is True
    assert book.contact_changed("1005", URI, "Reachable") is True
    assert book.contact_changed("1005", URI, "Updated") is True       # a re-registration: still there
    assert book.contact_changed("1005", URI, "Unknown") is None       # says nothing
    assert book.contact_changed("1005", URI, "Unreachable") is False  # qualify got no answer
    assert book.contact_changed("1005", URI, "Reachable") is True
    # A new registration from another address replaces the old one (remove_existing): in
    # whichever order Asterisk tells it, the phone is there at the end.
    other = "sip:1005@127.0.0.1:5077"
    assert book.contact_changed("1005", other, "Created") is True
    assert book.contact_changed("1005", URI, "Removed") is True
    assert book.contact_changed("1005", other, "Removed") is False    # unregistered
    book.snapshot("1005", True, (URI,))
    assert book.there("1005")
    assert book.contact_changed("1005", URI, "Removed") is False


def test_agents_phones_are_qualified_as_the_settings_say(settings: Settings) -> None:
    conf = pjsip_conf(settings.model_copy(update={"agents": [agent("1001")]}))
    aor = conf[conf.index("[1001]\ntype = aor"):].split("\n\n")[0]
    assert "qualify_frequency = 5" in aor and "qualify_timeout = 2" in aor
    quick = load_settings(overrides={**_overrides(settings), "asterisk": {"qualify_frequency_s": 1,
                                                                         "qualify_timeout_s": 0.5}})
    conf = pjsip_conf(quick.model_copy(update={"agents": [agent("1001")]}))
    assert "qualify_frequency = 1\nqualify_timeout = 0.5" in conf
    assert "eventfilter(action(include),name(ContactStatus)) =" in manager_conf(settings)


def test_a_qualify_frequency_out_of_range_is_refused(settings: Settings) -> None:
    with pytest.raises(ConfigError, match=r"asterisk\.qualify_frequency_s"):
        load_settings(overrides={**_overrides(settings), "asterisk": {"qualify_frequency_s": -1}})


def _overrides(settings: Settings) -> dict[str, object]:
    return {"paths": {"spool_dir": str(settings.paths.spool_dir),
                      "asterisk_config_dir": str(settings.paths.asterisk_config_dir)},
            "database": {"url": settings.database.url}, "web": {"secret_key": "test-secret-key-0123456789abcdef"},
            "ami": {"secret": "test-ami-secret"}}


def endpoints_reply(state: str, contacts: str) -> Callable[[object, dict[str, str]], list[dict[str, str] | str]]:
    """Asterisk's PJSIPShowEndpoints as the fake AMI answers it: endpoint 1001 in this state."""
    def reply(session: object, action: dict[str, str]) -> list[dict[str, str] | str]:
        aid = action["ActionID"]
        return [{"Response": "Success", "ActionID": aid, "EventList": "start", "Message": "A listing of Endpoints follows"},
                {"Event": "EndpointList", "ActionID": aid, "ObjectType": "endpoint", "ObjectName": "1001",
                 "DeviceState": state, "Contacts": contacts},
                {"Event": "EndpointListComplete", "ActionID": aid, "EventList": "Complete", "ListItems": "1"}]
    return reply


async def test_a_registration_replaced_in_any_order_keeps_the_phone_there(line: FakeLine) -> None:
    """Asterisk tells a refreshed registration as a new contact and the old one removed; when
    the removal comes last its list says the phone is there, and the engine believes the list."""
    engine, uri = line.engine, "sip:1001@127.0.0.1:5071"
    line.fake.replies["PJSIPShowEndpoints"] = endpoints_reply("Not in use", f"1001/{uri},")
    await engine.handle_event(ContactStatus("1001", uri, "Created", "1001"))
    await engine.handle_event(ContactStatus("1001", uri, "Removed", "1001"))
    await asyncio.sleep(0.6)
    assert engine.acd.phone_reachable("PJSIP/1001")


@pytest.fixture
async def line(settings, sessionmaker) -> AsyncIterator[FakeLine]:
    async with running_line(settings, sessionmaker, [agent("1001")]) as running:
        yield running


async def test_an_unregistered_phone_is_not_rung_and_its_agent_takes_the_call_once_it_registers(line: FakeLine) -> None:
    engine = line.engine
    line.fake.replies["PJSIPShowEndpoints"] = endpoints_reply("Unavailable", "")
    await engine.login("1001")
    await engine.handle_event(ContactStatus("1001", "sip:1001@127.0.0.1:5071", "Removed", "1001"))
    await line.until(lambda: not engine.acd.phone_reachable("PJSIP/1001"))
    assert next(a for a in await engine.agents() if a["id"] == "1001")["phone_reachable"] is False
    line.call_in()
    await line.until(lambda: [c.state.value for c in engine.acd.calls()] == ["waiting"])
    assert line.dials() == []
    await engine.handle_event(ContactStatus("1001", "sip:1001@127.0.0.1:5071", "Created", "1001"))
    await line.until(lambda: len(line.dials()) == 1)
    assert engine.acd.agent("1001").state.value == "ringing"
    line.hang_up()
    await line.until(lambda: engine.calls_closed == 1)


async def test_contacts_of_aors_that_are_no_agents_phones_are_ignored(line: FakeLine) -> None:
    await line.engine.handle_event(ContactStatus("trunk", "sip:127.0.0.1:5090", "Unreachable", ""))
    assert line.engine.acd.phone_reachable("PJSIP/trunk")
    assert line.engine.acd.phone_reachable("PJSIP/1001")


async def test_asterisks_list_at_connect_tells_which_phones_are_there(line: FakeLine) -> None:
    line.fake.replies["PJSIPShowEndpoints"] = endpoints_reply("Unavailable", "1001/sip:1001@127.0.0.1:5071,")
    await line.engine.phones.sync()
    assert not line.engine.acd.phone_reachable("PJSIP/1001")      # its fixed contact fails qualify
    await line.engine.handle_event(ContactStatus("1001", "sip:1001@127.0.0.1:5071", "Reachable", "1001"))
    assert line.engine.acd.phone_reachable("PJSIP/1001")
