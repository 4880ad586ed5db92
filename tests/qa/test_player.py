"""What the reviewer's player shows, decided without a browser: turns, talk time per party, marks."""
from __future__ import annotations

from callcenter.qa import player
from callcenter.qa.checks import Spoken


def said(channel: str, start: float, end: float, word: str = "词") -> Spoken:
    return Spoken(channel, word, start, end)


def test_turns_run_on_until_the_other_party_speaks_or_a_long_pause_and_the_paused_stretch_sits_among_them() -> None:
    words = [said("agent", 0.4, 1.0, "您好"), said("agent", 1.0, 2.0, "供水热线"), said("caller", 2.6, 3.0, "我家"),
             said("caller", 3.0, 3.8, "漏水"), said("caller", 9.0, 9.5, "喂"), said("agent", 9.6, 10.0, "在")]
    turns = player.turns(words, [[6.0, 8.0]])
    assert [(t.channel, [w.word for w in t.words]) for t in turns] == [
        ("agent", ["您好", "供水热线"]), ("caller", ["我家", "漏水"]), ("paused", []), ("caller", ["喂"]),
        ("agent", ["在"])]
    assert (turns[2].start_s, turns[2].end_s) == (6.0, 8.0)
    # a pause longer than TURN_GAP_S starts a new turn of the same party
    assert len(player.turns([said("caller", 0, 1), said("caller", 1 + player.TURN_GAP_S + 0.1, 4)])) == 2


def test_talk_over_is_counted_against_the_party_who_started_speaking_over_the_other() -> None:
    words = [said("caller", 0.0, 4.0), said("agent", 3.0, 5.0),      # the agent cuts in at 3.0 for 1 s
             said("agent", 10.0, 12.0), said("caller", 11.5, 13.0)]  # the caller cuts in at 11.5 for 0.5 s
    stats = player.talk_stats(words, 20.0)
    assert stats["agent"] == {"talk_s": 4.0, "talk_over_s": 1.0}
    assert stats["caller"] == {"talk_s": 5.5, "talk_over_s": 0.5}
    assert stats["silence_s"] == 20.0 - 5.0 - 3.0 and stats["duration_s"] == 20.0
    # a party's own words overlapping each other count once
    assert player.talk_stats([said("agent", 0, 2), said("agent", 1, 3)], 3.0)["agent"]["talk_s"] == 3.0


def test_marks_are_every_piece_of_evidence_in_time_order_with_its_verdict() -> None:
    checks = [{"check": "greeting", "passed": True, "evidence": [{"start_s": 0.4, "end_s": 1.0, "channel": "agent",
                                                                    "text": "您好"}]},
              {"check": "forbidden_phrases", "passed": False,
               "evidence": [{"start_s": 9.0, "end_s": 9.8, "channel": "agent", "text": "不知道"}]},
              {"check": "closing", "passed": False, "evidence": []},
              {"check": "survey", "passed": False, "evidence": [{"start_s": 14.0, "end_s": 14.0, "channel": "caller"}]},
              "not a check", {"check": "odd", "passed": False, "evidence": [{"start_s": "x"}]}]
    marks = player.marks(checks)
    assert [(m.check, m.passed, m.start_s, m.text) for m in marks] == [
        ("greeting", True, 0.4, "您好"), ("forbidden_phrases", False, 9.0, "不知道"), ("survey", False, 14.0, None)]


def test_the_clock() -> None:
    assert [player.clock(s) for s in (0, 9.9, 65, 3723, -1)] == ["0:00", "0:09", "1:05", "1:02:03", "0:00"]
