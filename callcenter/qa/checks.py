"""Automatic checks of one call: pure (words and call facts in, results out).

Each result carries its evidence as time offsets into the recording, so a reviewer can jump
to the moment. The rules come from a YAML file (qa/rules.yaml by default).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

DEFAULT_RULES = Path(__file__).with_name("rules.yaml")


class _Rule(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Greeting(_Rule):
    within_s: float = Field(gt=0)
    phrases: list[str]


class Closing(_Rule):
    last_s: float = Field(gt=0)
    phrases: list[str]


class Forbidden(_Rule):
    phrases: list[str]


class TalkOver(_Rule):
    min_overlap_s: float = Field(gt=0)


class Silence(_Rule):
    max_gap_s: float = Field(gt=0)


class Survey(_Rule):
    low_score: int = Field(ge=1, le=5)


class Rules(_Rule):
    greeting: Greeting
    closing: Closing
    forbidden: Forbidden
    talk_over: TalkOver
    silence: Silence
    survey: Survey


class RulesError(Exception):
    pass


def load_rules(path: str | Path | None = None) -> Rules:
    path = Path(path) if path else DEFAULT_RULES
    try:
        return Rules.model_validate(yaml.safe_load(path.read_text(encoding="utf-8")))
    except FileNotFoundError:
        raise RulesError(f"{path}: QA rules file not found") from None
    except yaml.YAMLError as exc:
        raise RulesError(f"{path}: not valid YAML: {exc}") from None
    except ValidationError as exc:
        problems = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors())
        raise RulesError(f"{path}: {problems}") from None


@dataclass(frozen=True)
class Spoken:
    channel: str        # caller | agent
    word: str
    start_s: float
    end_s: float


@dataclass(frozen=True)
class Evidence:
    start_s: float
    end_s: float
    channel: str
    text: str


@dataclass(frozen=True)
class CheckResult:
    check: str
    passed: bool
    evidence: tuple[Evidence, ...] = field(default=())

    def as_dict(self) -> dict[str, Any]:
        return {"check": self.check, "passed": self.passed,
                "evidence": [e.__dict__ for e in self.evidence]}


def _said(words: list[Spoken], channel: str, phrases: list[str]) -> list[Spoken]:
    return [w for w in words if w.channel == channel and any(p in w.word or w.word in p for p in phrases if w.word)]


def _ev(w: Spoken) -> Evidence:
    return Evidence(w.start_s, w.end_s, w.channel, w.word)


def check_call(words: list[Spoken], rules: Rules, *, duration_s: float, hangup_first: str | None,
               survey_score: int | None) -> list[CheckResult]:
    results = []
    agent_words = [w for w in words if w.channel == "agent"]
    first_agent = min((w.start_s for w in agent_words), default=0.0)

    greeted = [w for w in _said(words, "agent", rules.greeting.phrases) if w.start_s <= first_agent + rules.greeting.within_s]
    results.append(CheckResult("greeting", bool(greeted), tuple(_ev(w) for w in greeted)))

    closed = [w for w in _said(words, "agent", rules.closing.phrases) if w.end_s >= duration_s - rules.closing.last_s]
    results.append(CheckResult("closing", bool(closed), tuple(_ev(w) for w in closed)))

    bad = _said(words, "agent", rules.forbidden.phrases)
    results.append(CheckResult("forbidden_phrases", not bad, tuple(_ev(w) for w in bad)))

    overlaps = []
    caller_words = [w for w in words if w.channel == "caller"]
    for a in agent_words:
        for c in caller_words:
            start, end = max(a.start_s, c.start_s), min(a.end_s, c.end_s)
            if end - start > 0:
                overlaps.append((start, end))
    merged: list[list[float]] = []
    for start, end in sorted(overlaps):
        if merged and start <= merged[-1][1]:
            merged[-1][1] = max(merged[-1][1], end)
        else:
            merged.append([start, end])
    talk_over = [Evidence(s, e, "both", "talk-over") for s, e in merged if e - s >= rules.talk_over.min_overlap_s]
    results.append(CheckResult("talk_over", not talk_over, tuple(talk_over)))

    times = sorted((w.start_s, w.end_s) for w in words)
    gaps, last_end = [], 0.0
    for start, end in [*times, (duration_s, duration_s)]:
        if start - last_end > rules.silence.max_gap_s:
            gaps.append(Evidence(last_end, start, "both", "silence"))
        last_end = max(last_end, end)
    results.append(CheckResult("long_silence", not gaps, tuple(gaps)))

    results.append(CheckResult("caller_hung_up_first", hangup_first != "agent",
                               (Evidence(duration_s, duration_s, "agent", "agent hung up first"),)
                               if hangup_first == "agent" else ()))
    low = survey_score is not None and survey_score <= rules.survey.low_score
    results.append(CheckResult("survey", not low, (Evidence(duration_s, duration_s, "caller", f"score {survey_score}"),)
                               if low else ()))
    return results
