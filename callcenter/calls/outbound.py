"""Calls the hotline places: automated follow-up calls (回访) and kept-place callbacks.

The engine originates a call to the citizen through the trunk; when they answer, the
dialplan (callcenter-outbound) hands the channel to AsyncAGI with the call's purpose and id,
and the script here asks the question and records the key pressed. No answer (busy, not
answered, failed) is recorded too: such follow-ups go to an agent.

Every number passes the dial policy (calls/dial_policy.py) before anything is originated; a
refused one is recorded as refused (a follow-up `refused`, for a person to handle; a
callback attempt `callback_refused`), never as answered or as not reached.
"""
from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import TYPE_CHECKING, Any

from callcenter.acd import events as acd_ev
from callcenter.ami import events as ami_ev
from callcenter.ami.errors import AmiError
from callcenter.calls.dial_policy import NumberRefused

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
        try:
            number = self.engine.dial_policy.check(number)
        except NumberRefused as exc:
            log.warning("follow-up %s: not dialled: %s", followup_id, exc)
            await self.followups.record_refused(followup_id, exc.reason)
            return
        answered = self._answered[followup_id] = asyncio.Event()
        try:
            result = await self.engine.originate_number(
                number, context="callcenter-outbound", exten="followup",
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


class CallbackCalls:
    """The kept-place callback's turn (the ACD's PlaceCallback): ring the agent first, and when
    they answer, dial the citizen through the trunk and bridge the two. The ACD hears
    AgentAnswered when the agent picks up (or AgentRingFailed), then CallEnded. The attempt is
    kept on the original call's record: `callback_answered` when the citizen was reached,
    `callback_not_reached` when not, `no_answer` when the agent did not pick up, and
    `callback_refused` when the dial policy refuses the number: then nobody is rung and the
    ACD drops the kept place (CallLeft), so it is not tried again."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self._waiting: dict[str, tuple[Any, str, int | None]] = {}
        engine.outbound_handlers["callback"] = self.agent_answered

    async def place(self, command: Any) -> None:
        engine = self.engine
        attempt = await engine.store.add_attempt(command.call_id, command.agent_id, engine.clock.now())
        try:
            number = engine.dial_policy.check(command.number)
        except NumberRefused as exc:
            log.warning("callback %s: not dialled: %s", command.call_id, exc)
            await engine.store.end_attempt(command.call_id, attempt, "callback_refused", engine.clock.now())
            await engine.feed_acd(acd_ev.CallLeft(call_id=command.call_id, at=engine.clock.monotonic()))
            return
        self._waiting[command.call_id] = (command, number, attempt)
        try:
            result = await engine.originate(
                command.endpoint, context="callcenter-outbound", exten="callback",
                caller_id=number, timeout_s=max(1, int(command.timeout_s)),
                variables={"CALLCENTER_ID": command.call_id})
        except AmiError as exc:
            log.error("callback %s: could not ring agent %s: %s", command.call_id, command.agent_id, exc)
            result = None
        if result is None or result.response != "Success":
            self._waiting.pop(command.call_id, None)
            await engine.store.end_attempt(command.call_id, attempt, "no_answer", engine.clock.now())
            await engine.feed_acd(acd_ev.AgentRingFailed(call_id=command.call_id, agent_id=command.agent_id,
                                                         reason="no_answer", at=engine.clock.monotonic()))

    async def agent_answered(self, event: ami_ev.AsyncAGIStart) -> None:
        engine, gw = self.engine, self.engine.gateway
        call_id = event.env.get("agi_arg_2", "")
        found = self._waiting.pop(call_id, None)
        if found is None:
            log.warning("callback AGI for unknown call %r: hanging up", call_id)
            await gw.hangup(event.channel)
            return
        command, number, attempt = found
        await engine.feed_acd(acd_ev.AgentAnswered(call_id=call_id, agent_id=command.agent_id,
                                                   at=engine.clock.monotonic()))
        outcome = "callback_not_reached"
        try:
            await gw.dial_number(event.channel, number, ANSWER_WAIT_S, "g")
            status = await gw.get_variable(event.channel, "DIALSTATUS")
            outcome = "callback_answered" if status == "ANSWER" else "callback_not_reached"
            with contextlib.suppress(AmiError):
                await gw.hangup(event.channel)
        except AmiError as exc:
            log.info("callback %s: the agent's leg ended (%s)", call_id, type(exc).__name__)
            outcome = "callback_answered"   # the agent hung up on the bridge: they talked
        finally:
            await engine.store.end_attempt(call_id, attempt, outcome, engine.clock.now())
            await engine.feed_acd(acd_ev.CallEnded(call_id=call_id, at=engine.clock.monotonic()))
        log.info("callback %s by agent %s: %s", call_id, command.agent_id, outcome)
