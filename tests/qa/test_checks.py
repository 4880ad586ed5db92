import pytest

from callcenter.qa.checks import RulesError, Spoken, check_call, load_rules

RULES = load_rules()


def results(words, duration_s=60.0, hangup_first="caller", survey_score=5):
    return {r.check: r for r in check_call(words, RULES, duration_s=duration_s, hangup_first=hangup_first,
                                           survey_score=survey_score)}


def test_a_good_call_passes_every_check() -> None:
    words = [Spoken("agent", "您好", 1.0, 1.5), Spoken("caller", "漏水", 3.0, 3.6),
             Spoken("agent", "地址", 20.0, 20.6), Spoken("caller", "人民路", 30.0, 31.0),
             Spoken("agent", "再见", 55.0, 55.5), Spoken("caller", "谢谢", 56.0, 56.4)]
    assert all(r.passed for r in results(words, duration_s=58.0).values())


@pytest.mark.parametrize(("words", "check", "evidence_at"), [
    ([Spoken("agent", "喂", 1.0, 1.2), Spoken("agent", "您好", 20.0, 20.5)], "greeting", None),
    ([Spoken("agent", "您好", 1.0, 1.5), Spoken("agent", "不知道", 12.0, 12.6)], "forbidden_phrases", 12.0),
    ([Spoken("agent", "您好", 1.0, 4.0), Spoken("caller", "水", 2.0, 4.5)], "talk_over", 2.0),
    ([Spoken("agent", "您好", 1.0, 1.5), Spoken("caller", "嗯", 40.0, 40.3)], "long_silence", 1.5),
])
def test_each_check_flags_with_evidence(words, check, evidence_at) -> None:
    result = results(words, duration_s=45.0)[check]
    assert not result.passed
    if evidence_at is not None:
        assert result.evidence[0].start_s == evidence_at


def test_agent_hanging_up_first_and_a_low_score_are_flagged() -> None:
    got = results([Spoken("agent", "您好", 1.0, 1.5)], hangup_first="agent", survey_score=1)
    assert not got["caller_hung_up_first"].passed and not got["survey"].passed
    assert got["survey"].evidence[0].text == "score 1"


def test_a_broken_rules_file_names_the_key(tmp_path) -> None:
    bad = tmp_path / "rules.yaml"
    bad.write_text("greeting: {within_s: -1, phrases: []}\n")
    with pytest.raises(RulesError, match=r"greeting\.within_s"):
        load_rules(bad)
