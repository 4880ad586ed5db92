"""Kannel's smsbox HTTP sendsms, as the sender uses it: one message in, an `Outcome` out.

Chinese goes with `coding=2` and the text in UTF-8 (`charset` alone arrives as "??"); every
message asks for delivery reports 1 + 2 + 8 + 16 on a URL back to the hotline that carries the
message id, the attempt and the message's own token (Kannel fills in `%d`, the report type).
"""
from __future__ import annotations

import logging
from urllib.parse import urlencode

import aiohttp

from callcenter.config import SmsSettings
from callcenter.sms import core
from callcenter.sms.models import SmsMessage

log = logging.getLogger(__name__)
DLR_PATH = "/api/sms/dlr"
MO_PATH = "/api/sms/mo"


def dlr_url(callback_base: str, message: SmsMessage) -> str:
    # %d stays for Kannel to fill in; everything else is ours and URL-safe.
    query = urlencode({"id": message.id, "a": message.attempts, "token": message.dlr_token})
    return f"{callback_base}{DLR_PATH}?{query}&type=%d"


class KannelClient:
    def __init__(self, settings: SmsSettings, callback_base: str) -> None:
        self.settings = settings
        self.callback_base = callback_base.rstrip("/")
        self.http: aiohttp.ClientSession | None = None

    async def start(self) -> None:
        if self.http is None:
            connector = aiohttp.TCPConnector(limit=self.settings.concurrency)
            self.http = aiohttp.ClientSession(connector=connector,
                                              timeout=aiohttp.ClientTimeout(total=self.settings.send_timeout_s))

    async def close(self) -> None:
        if self.http is not None:
            await self.http.close()
            self.http = None

    def params(self, message: SmsMessage) -> dict[str, str]:
        s = self.settings
        return {
            "username": s.sendsms_username,
            "password": s.sendsms_password.get_secret_value() if s.sendsms_password else "",
            "from": s.sender, "to": message.number, "text": message.text,
            "coding": str(core.KANNEL_CODING[message.coding]), "charset": "UTF-8",
            "dlr-mask": str(core.DLR_MASK), "dlr-url": dlr_url(self.callback_base, message),
        }

    async def send(self, message: SmsMessage) -> tuple[core.Outcome, str]:
        """What became of handing this message to Kannel, and Kannel's words for it."""
        await self.start()
        assert self.http is not None
        try:
            async with self.http.get(self.settings.sendsms_url, params=self.params(message)) as response:
                body = (await response.text()).strip()
                return core.outcome_of_status(response.status), f"HTTP {response.status}: {body[:200]}"
        except aiohttp.ClientConnectorError as exc:
            return core.Outcome.GATEWAY_DOWN, f"gateway unreachable: {exc.os_error or exc}"
        except (TimeoutError, aiohttp.ClientError) as exc:
            # The request went out; Kannel may have taken it.
            return core.Outcome.UNCERTAIN, f"no answer from the gateway: {type(exc).__name__}"
