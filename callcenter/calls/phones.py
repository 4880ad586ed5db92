"""The agents' phones as Asterisk sees them, told to the ACD.

Asterisk says when a phone's contact changes (`ContactStatus`: Created when it registers,
Reachable/Unreachable from qualify, Removed when it unregisters or its registration
expires, Updated when it re-registers) and lists every endpoint on demand
(`PJSIPShowEndpoints`: the snapshot at connect, after a reconnect, and a while after a ring
found the phone gone, since no event says when such a phone is back). `ContactBook` (pure)
keeps each agent's contacts and says whether the phone is there: at least one contact that
registered or answers qualify. `Phones` feeds the ACD `PhoneReachable`/`PhoneUnreachable`
for the agents' endpoints only (the trunk and unknown AORs are not agents' phones).
"""
from __future__ import annotations

import asyncio
import logging
from typing import TYPE_CHECKING

from callcenter.acd import events as acd_ev
from callcenter.ami import events as ami_ev
from callcenter.ami.errors import AmiError

if TYPE_CHECKING:
    from callcenter.calls.engine import Engine

log = logging.getLogger(__name__)

CONFIRM_GONE_S = 0.3   # how long after a contact is gone Asterisk's list is read to confirm it

# What a ContactStatus says about the contact: there (True) or not (False). Removed drops it;
# Updated (re-registered) keeps what is known; Unknown says nothing.
CONTACT_STATUS: dict[str, bool] = {
    "created": True, "reachable": True, "nonqualified": True, "unqualified": True, "unreachable": False,
}


class ContactBook:
    """Each AOR's contacts (by URI) and whether each is there. Pure."""

    def __init__(self) -> None:
        self._contacts: dict[str, dict[str, bool]] = {}

    def contact_changed(self, aor: str, uri: str, status: str) -> bool | None:
        """Take one ContactStatus; return whether the AOR's phone is there now (at least one
        contact there), or None when this says nothing about it."""
        status = status.lower()
        contacts = self._contacts.setdefault(aor, {})
        if status == "removed":
            contacts.pop(uri, None)
        elif status == "updated":
            contacts.setdefault(uri, True)     # a refresh of a registration made before we looked
        elif (there := CONTACT_STATUS.get(status)) is not None:
            contacts[uri] = there
        else:
            return None
        return any(contacts.values())

    def snapshot(self, aor: str, there: bool, uris: tuple[str, ...]) -> None:
        """Asterisk's list says the phone is (not) there, with these contacts."""
        self._contacts[aor] = dict.fromkeys(uris, there)

    def there(self, aor: str) -> bool:
        return any(self._contacts.get(aor, {}).values())


class Phones:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.book = ContactBook()
        self._rechecks: set[str] = set()
        # ContactStatus events taken per AOR: a list asked for before the latest event is older
        # than it, and must not undo it.
        self._news: dict[str, int] = {}

    def _agent_aors(self) -> set[str]:
        return {agent.id for agent in self.engine.settings.agents}

    async def contact_status(self, event: ami_ev.ContactStatus) -> None:
        if event.aor not in self._agent_aors():
            return
        self._news[event.aor] = self._news.get(event.aor, 0) + 1
        there = self.book.contact_changed(event.aor, event.uri, event.status)
        log.info("phone %s: contact %s %s", event.aor, event.uri, event.status)
        if there is True or (there is False and event.status.lower() == "unreachable"):
            await self._tell(event.aor, there)      # qualify's verdict on a contact it knows
        elif there is False:
            # Removed, and none left by the events as they came. Asterisk may tell a replaced
            # registration as a new contact and the old one removed, in either order: its
            # list, a moment later, says what is so (unless a newer event says it first).
            self.engine.tasks.spawn(self._confirm_gone(event.aor, self._news[event.aor]),
                                    name=f"phone-gone-{event.aor}")

    async def _confirm_gone(self, aor: str, news: int) -> None:
        await asyncio.sleep(CONFIRM_GONE_S)
        try:
            there, uris = (await self.engine.gateway.phones()).get(aor, (False, ()))
        except (AmiError, OSError, TimeoutError) as exc:
            log.warning("phone %s: list not read (%s): gone, as the events say", aor, exc)
            there, uris = self.book.there(aor), ()
        if self._news.get(aor, 0) != news:
            return                # a newer event came meanwhile and was told
        if uris:
            self.book.snapshot(aor, there, uris)
        await self._tell(aor, there)

    async def sync(self) -> None:
        """Asterisk's list of endpoints, told to the ACD (at connect, after a reconnect)."""
        asked = dict(self._news)
        try:
            listed = await self.engine.gateway.phones()
        except (AmiError, OSError, TimeoutError) as exc:
            log.warning("phones snapshot failed: %s", exc)
            return
        for aor in sorted(self._agent_aors()):
            if self._news.get(aor, 0) != asked.get(aor, 0):
                continue      # an event came while the list was on its way: it is newer
            there, uris = listed.get(aor, (False, ()))
            self.book.snapshot(aor, there, uris)
            await self._tell(aor, there)

    async def _tell(self, aor: str, there: bool) -> None:
        endpoint, at = f"PJSIP/{aor}", self.engine.clock.monotonic()
        await self.engine.feed_acd(acd_ev.PhoneReachable(endpoint, at) if there else acd_ev.PhoneUnreachable(endpoint, at))

    def lost(self, endpoint: str) -> None:
        """The ACD counts this phone gone: look again after a qualify round, in case only a
        ring said so (Asterisk's contact may be fine, and then no event would bring it back)."""
        aor = endpoint.partition("/")[2]
        if aor in self._rechecks or aor not in self._agent_aors():
            return
        self._rechecks.add(aor)
        a = self.engine.settings.asterisk
        delay = (a.qualify_frequency_s or 5) + a.qualify_timeout_s
        self.engine.keep_timer(self.engine.clock.call_later(delay, self._recheck_soon, aor))

    def _recheck_soon(self, aor: str) -> None:
        self.engine.tasks.spawn(self._recheck(aor), name=f"phone-recheck-{aor}")

    async def _recheck(self, aor: str) -> None:
        self._rechecks.discard(aor)
        if self.engine.acd.phone_reachable(f"PJSIP/{aor}"):
            return
        asked = self._news.get(aor, 0)
        try:
            listed = await self.engine.gateway.phones()
        except (AmiError, OSError) as exc:
            log.warning("phone %s: recheck failed (the next ContactStatus or reconnect tells): %s", aor, exc)
            return
        there, uris = listed.get(aor, (False, ()))
        if there and self._news.get(aor, 0) == asked:
            log.info("phone %s: Asterisk reaches it again", aor)
            self.book.snapshot(aor, True, uris)
            await self._tell(aor, True)
