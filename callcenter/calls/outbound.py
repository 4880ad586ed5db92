"""Calls the hotline places: automated follow-up calls (回访) for now.

The engine originates a call to the citizen through the trunk; when they answer, the
dialplan (callcenter-outbound) hands the channel to AsyncAGI with the call's purpose and id,
and the script here asks the question and records the key pressed. No answer (busy, not
answered, failed) is recorded too: such follow-ups go to an agent.
"""
from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import TYPE_CHECKING, Any

from callcenter.ami import events as ami_ev
from callcenter.ami.errors import AmiError

if TYPE_CHECKING:
    from callcenter.calls.engine import Engine

log = logging.getLogger(__name__)
ANSWER_WAIT_S = 30
QUESTION_TIMEOUT_MS = 8000


class FollowUpCalls:
    """The engine's FollowUpDialer (callcenter/workorders/followups.py)."""

    def __init__(self, engine: Engine, followups: Any) -> None:
        self.engine = engine
        self.followups = followups
        self._answered: dict[str, asyncio.Event] = {}
        engine.outbound_handlers["followup"] = self.answered

    async def place_followup_call(self, followup_id: str, number: str) -> None:
        settings = self.engine.settings
        answered = self._answered[followup_id] = asyncio.Event()
        try:
            result = await self.engine.originate(
                f"PJSIP/{number}@trunk", context="callcenter-outbound", exten="followup",
                caller_id=settings.hotline.number, timeout_s=ANSWER_WAIT_S,
                variables={"CALLCENTER_ID": followup_id})
        except AmiError as exc:
            log.error("follow-up %s: the call to %s could not be placed: %s", followup_id, number, exc)
            result = None
        if result is None or result.response != "Success":
            self._answered.pop(followup_id, None)
            await self.followups.record_answer(followup_id, None)
            return
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(answered.wait(), 5)

    async def answered(self, event: ami_ev.AsyncAGIStart) -> None:
        followup_id = event.env.get("agi_arg_2", "")
        gw, prompts = self.engine.gateway, f"{self.engine.settings.asterisk.spool_dir}/prompts"
        if followup_id in self._answered:
            self._answered.pop(followup_id).set()
        digit: str | None = None
        try:
            digit = await gw.get_data(event.channel, f"{prompts}/followup_question", QUESTION_TIMEOUT_MS, 1)
            await self.followups.record_answer(followup_id, digit)
            await gw.stream_file(event.channel, f"{prompts}/followup_thanks")
            await gw.hangup(event.channel)
        except AmiError as exc:
            log.info("follow-up %s: the citizen left (%s)", followup_id, type(exc).__name__)
            if digit is None:
                await self.followups.record_answer(followup_id, None)
