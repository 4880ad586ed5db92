"""What the reviewer's player shows of a call, decided here and not in the browser. Pure.

- The transcript as turns: a party's words run on in one turn until the other party speaks or
  they pause longer than TURN_GAP_S; the stretches where the agent paused the recording (an ID
  or card number, never transcribed) sit among the turns at their time.
- Talk time, talk-over and silence per party, from the words' times: a party's talk is the union
  of their words; talk-over is counted against the party who started speaking while the other
  was still speaking (the one who interrupted); silence is the time neither party speaks.
- The automatic checks as marks: each piece of evidence (a greeting said, a forbidden phrase, a
  talk-over, a long silence, who hung up, the survey) at its time, to jump to.
"""
from __future__ import annotations

import bisect
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

TURN_GAP_S = 1.5
PARTIES = ("caller", "agent")


class Said(Protocol):
    channel: str
    word: str
    start_s: float
    end_s: float


@dataclass(frozen=True)
class Turn:
    start_s: float
    end_s: float
    channel: str                      # caller | agent | paused
    words: tuple[Said, ...] = field(default=())


@dataclass(frozen=True)
class Mark:
    check: str
    passed: bool
    start_s: float
    end_s: float
    channel: str
    text: str | None                  # None when the reader may not read the words


def turns(words: Sequence[Said], paused: Iterable[Sequence[float]] = (), gap_s: float = TURN_GAP_S) -> list[Turn]:
    """The conversation in order of time: each party's turns, and the paused stretches."""
    out: list[Turn] = []
    current: list[Said] = []
    for word in sorted(words, key=lambda w: (w.start_s, w.end_s)):
        if current and (word.channel != current[-1].channel or word.start_s - current[-1].end_s > gap_s):
            out.append(Turn(current[0].start_s, max(w.end_s for w in current), current[0].channel, tuple(current)))
            current = []
        current.append(word)
    if current:
        out.append(Turn(current[0].start_s, max(w.end_s for w in current), current[0].channel, tuple(current)))
    out += [Turn(float(start), float(end), "paused") for start, end in paused]
    return sorted(out, key=lambda t: (t.start_s, t.channel != "paused"))


def _union(spans: Iterable[tuple[float, float]]) -> list[tuple[float, float]]:
    merged: list[list[float]] = []
    for start, end in sorted(spans):
        if merged and start <= merged[-1][1]:
            merged[-1][1] = max(merged[-1][1], end)
        elif end > start:
            merged.append([start, end])
    return [(a, b) for a, b in merged]


def _length(spans: Iterable[tuple[float, float]]) -> float:
    return sum(b - a for a, b in spans)


def talk_stats(words: Sequence[Said], duration_s: float) -> dict[str, Any]:
    """{"caller": {"talk_s", "talk_over_s"}, "agent": {...}, "silence_s", "duration_s"}, seconds to 0.1."""
    talk = {p: _union((w.start_s, w.end_s) for w in words if w.channel == p) for p in PARTIES}
    over = {p: 0.0 for p in PARTIES}
    for party, other in (PARTIES, PARTIES[::-1]):
        other_starts = [o_start for o_start, _ in talk[other]]
        for start, end in talk[party]:
            # The other's stretches are disjoint: only the last one begun before `start` can hold it.
            at = bisect.bisect_left(other_starts, start) - 1
            if at >= 0 and start < talk[other][at][1]:
                # `party` started while `other` was speaking: the overlap is party's talk-over
                over[party] += min(end, talk[other][at][1]) - start
    spoken = _length(_union([*talk["caller"], *talk["agent"]]))
    out: dict[str, Any] = {p: {"talk_s": round(_length(talk[p]), 1), "talk_over_s": round(over[p], 1)}
                           for p in PARTIES}
    out["silence_s"] = round(max(duration_s - spoken, 0.0), 1)
    out["duration_s"] = round(duration_s, 1)
    return out


def marks(checks: Iterable[Any]) -> list[Mark]:
    """Every piece of every check's evidence, in order of time."""
    found = []
    for check in checks:
        if not isinstance(check, dict):
            continue
        for ev in check.get("evidence", []):
            if isinstance(ev, dict) and isinstance(ev.get("start_s"), int | float):
                start = float(ev["start_s"])
                end = float(ev.get("end_s", start)) if isinstance(ev.get("end_s"), int | float) else start
                found.append(Mark(str(check.get("check", "")), bool(check.get("passed", True)), start, max(end, start),
                                  str(ev.get("channel", "")), ev.get("text") if isinstance(ev.get("text"), str) else None))
    return sorted(found, key=lambda m: (m.start_s, m.check))


def clock(seconds: float) -> str:
    """A moment of the recording as the player shows it: 1:05, 1:02:03."""
    whole = int(max(seconds, 0))
    hours, rest = divmod(whole, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes}:{secs:02d}"
