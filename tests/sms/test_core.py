"""The SMS rules on their own: segments, quiet hours (with a manual clock), opt-out, replies,
delivery-report ordering, backoff and the rate limit."""
from datetime import UTC, datetime, time, timedelta

from callcenter.clock import ManualClock
from callcenter.sms import core
from callcenter.sms.core import State

TZ = "Asia/Shanghai"
QUIET = core.QuietHours(time(21, 0), time(8, 0), TZ)


def test_chinese_goes_as_ucs2_and_its_parts_are_counted_before_sending() -> None:
    assert core.segments("您好") == core.Segments("ucs2", 2, 1)
    assert core.segments("停" * 70).parts == 1 and core.segments("停" * 71).parts == 2    # 70, then 67 a part
    assert core.segments("停" * 134).parts == 2 and core.segments("停" * 135).parts == 3
    assert core.segments("a" * 160) == core.Segments("gsm7", 160, 1)
    assert core.segments("a" * 161).parts == 2 and core.segments("a" * 307).parts == 3   # 153 a part
    assert core.segments("€" * 80) == core.Segments("gsm7", 160, 1)                     # extension: 2 septets
    assert core.segments("Reply 1 ok, 2 no").coding == "gsm7" and core.segments("回复TD退订").coding == "ucs2"


def test_quiet_hours_hold_customer_messages_but_not_urgent_outages_or_staff() -> None:
    clock = ManualClock(start=datetime(2026, 12, 1, 13, 30, tzinfo=UTC))   # 21:30 in Shanghai
    now = clock.now()
    morning = datetime(2026, 12, 2, 0, 0, tzinfo=UTC)                          # 08:00 the next day
    assert QUIET.covers(now)
    assert core.earliest_send("follow_up", False, now, QUIET) == morning
    assert core.earliest_send("outage", False, now, QUIET) == morning         # planned: waits
    assert core.earliest_send("outage", True, now, QUIET) == now              # urgent: goes
    assert core.earliest_send("warning", False, now, QUIET) == now
    assert core.earliest_send("dispatch", False, now, QUIET) == now
    clock.advance(3 * 3600)                                                    # 00:30: the same morning
    assert core.earliest_send("follow_up", False, clock.now(), QUIET) == morning
    clock.advance(8 * 3600)                                                    # 08:30: free
    assert not QUIET.covers(clock.now()) and core.earliest_send("follow_up", False, clock.now(), QUIET) == clock.now()
    day = core.QuietHours(time(12, 0), time(14, 0), TZ)                        # a window within one day
    assert day.covers(datetime(2026, 12, 1, 4, 30, tzinfo=UTC)) and not day.covers(datetime(2026, 12, 1, 6, 0, tzinfo=UTC))
    assert day.next_allowed(datetime(2026, 12, 1, 4, 30, tzinfo=UTC)) == datetime(2026, 12, 1, 6, 0, tzinfo=UTC)


def test_td_and_退订_opt_out_of_customer_messages_only() -> None:
    for text in ("TD", "td", " T D ", "退订", "回复TD退订", "TD。"):
        assert core.is_opt_out(text), text
    for text in ("2", "TDX", "不要退订了吧", ""):
        assert not core.is_opt_out(text), text
    assert core.opt_out_applies("follow_up") and core.opt_out_applies("outage")
    assert not core.opt_out_applies("warning") and not core.opt_out_applies("dispatch")


def test_a_reply_names_its_message_by_a_short_code_when_several_are_open() -> None:
    at = datetime(2026, 12, 1, tzinfo=UTC)
    assert core.parse_reply(" 2 ") == core.Reply("2", None)
    assert core.parse_reply("2#417") == core.Reply("2", "417") == core.parse_reply("2 417") == core.parse_reply("417 2")
    assert core.parse_reply("签收") == core.Reply("1", None)
    assert core.parse_reply("水还是没来") is None and core.parse_reply("22") is None
    one, two = core.Open("a", "417", at), core.Open("b", "512", at)
    assert core.match_reply(core.Reply("1", None), [one]) == one
    assert core.match_reply(core.Reply("1", None), [one, two]) is None          # which one? a person reads it
    assert core.match_reply(core.Reply("1", "512"), [one, two]) == two
    assert core.match_reply(core.Reply("1", "999"), [one, two]) is None


def test_delivery_reports_only_move_a_message_forwards() -> None:
    assert core.after_report(State.QUEUED, 8) is State.SENT
    assert core.after_report(State.SENT, 1) is State.DELIVERED
    assert core.after_report(State.DELIVERED, 8) is State.DELIVERED             # the carrier's 8 came late
    assert core.after_report(State.SENT, 2) is State.FAILED and core.after_report(State.QUEUED, 16) is State.FAILED
    assert core.after_report(State.DELIVERED, 2) is State.DELIVERED
    assert core.after_report(State.REPLIED, 1) is State.REPLIED
    assert core.DLR_MASK == 27


def test_kannels_answers_decide_whether_a_retry_is_safe() -> None:
    assert core.outcome_of_status(202) is core.Outcome.ACCEPTED
    assert core.outcome_of_status(503) is core.Outcome.GATEWAY_DOWN
    assert core.outcome_of_status(403) is core.Outcome.REJECTED
    assert [core.backoff_s(n, 1.0, 10.0) for n in (1, 2, 3, 4, 5)] == [1.0, 2.0, 4.0, 8.0, 10.0]


def test_the_gateway_rate_limit_is_a_token_bucket() -> None:
    clock = ManualClock()
    bucket = core.TokenBucket(rate=10.0, burst=3.0)
    assert [bucket.take(clock.monotonic()) for _ in range(3)] == [0.0, 0.0, 0.0]
    assert bucket.take(clock.monotonic()) == timedelta(milliseconds=100).total_seconds()
    clock.advance(0.1)
    assert bucket.take(clock.monotonic()) == 0.0
    clock.advance(10)
    assert sum(1 for _ in range(10) if bucket.take(clock.monotonic()) == 0.0) == 3   # never more than the burst
