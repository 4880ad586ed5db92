"""A real call's recording, transcribed: SIPp parties speak (espeak-ng, Korean), Vosk hears them."""
from __future__ import annotations

import asyncio

import pytest
import redis.asyncio as aioredis

from callcenter.recording.service import RecordingService
from callcenter.recording.store import TranscriptStore
from callcenter.recording.worker import run_worker
from callcenter.sipp import Key, caller_scenario, expect_ok
from tests.e2e.conftest import Hotline
from tests.e2e.test_spine import MENU_KEY_AFTER_MS, start_agent, start_caller

pytestmark = pytest.mark.asterisk
CALLER_WORDS = ["안녕하세요", "감사합니다"]
AGENT_WORDS = ["물이", "알려주세요"]


async def test_both_channels_of_a_real_call_are_transcribed(hotline: Hotline) -> None:
    line = hotline
    redis = aioredis.Redis.from_url(line.settings.redis.url)
    service = RecordingService(redis, line.settings.redis.prefix, "transcription", "workers")
    line.engine.hooks.append(service)
    agent_speech = line.sipp.speech("agent_ko.pcap", "물이 새요 주소를 알려주세요", voice="ko", total_s=12)
    caller_speech = line.sipp.speech("caller_ko.pcap", "안녕하세요 감사합니다", voice="ko", total_s=8)
    await line.engine.login("1001")
    agent = await start_agent(line, "1001", speech=agent_speech, ring_ms=300)
    caller = await start_caller(line, "caller_ko", caller_scenario(
        keys=(Key("2", MENU_KEY_AFTER_MS),), speech_pcap=caller_speech, speak_after_ms=4000, hangup_after_ms=7000))
    await expect_ok(caller)
    [call] = await line.closed_calls(1)
    assert call.recording_path
    try:
        done = await run_worker(line.settings, asyncio.Event(), consumer="e2e", grammar=CALLER_WORDS + AGENT_WORDS,
                                max_jobs=1)
        assert done == 1
        words = await TranscriptStore(line.sessionmaker).words(call.id)
    finally:
        await redis.aclose()
    await expect_ok(agent)
    assert all(0 <= w.start_s < w.end_s <= call.recording_duration_s + 0.1 for w in words)
    agent_words = [w for w in words if w.channel == "agent"]
    caller_words = [w for w in words if w.channel == "caller"]
    assert agent_words and {w.word for w in agent_words} <= set(AGENT_WORDS), [(w.channel, w.word) for w in words]
    assert caller_words and {w.word for w in caller_words} <= set(CALLER_WORDS), [(w.channel, w.word) for w in words]
    # The agent spoke half a second after answering; the caller a few seconds later.
    assert agent_words[0].start_s < 2.0
    assert caller_words[0].start_s > agent_words[0].start_s + 1.0
    await line.no_channels_left()
