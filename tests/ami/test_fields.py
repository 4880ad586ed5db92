from __future__ import annotations

import pytest

from callcenter.ami.errors import UnsafeField
from callcenter.ami.fields import check_action, clean_caller_name, clean_caller_number


@pytest.mark.parametrize(
    ("value", "reason"),
    [
        ("13800138000\r\nAction: Originate", "value contains CR at position 11"),
        ("13800138000\nAction: Originate", "value contains LF at position 11"),
        ("1380013\x008000", "value contains NUL at position 7"),
        ("1380\x1b[0m", "value contains control character U+001B at position 4"),
        ("9" * 1025, "value is 1025 characters long, the limit is 1024"),
    ],
)
def test_unsafe_values_are_refused_with_the_field_and_the_reason(value: str, reason: str) -> None:
    with pytest.raises(UnsafeField) as caught:
        check_action({"Action": "Originate", "Channel": "PJSIP/2001", "CallerID": value})
    assert caught.value.field == "CallerID"
    assert caught.value.reason == reason
    assert "CallerID" in str(caught.value)


def test_caller_id_of_500_characters_with_crlf_is_refused_under_a_tighter_bound() -> None:
    injected = ("1" * 250) + "\r\nAction: Hangup\r\nChannel: PJSIP/1001-00000002" + ("2" * 200)
    assert len(injected) > 450
    with pytest.raises(UnsafeField, match="limit is 256"):
        check_action({"Action": "Setvar", "Value": injected}, max_length=256)
    with pytest.raises(UnsafeField, match="CR at position 250"):
        check_action({"Action": "Setvar", "Value": injected})


@pytest.mark.parametrize("key", ["Caller ID", "Channel\r\nAction", "", "Val:ue", "1Channel"])
def test_bad_header_names_are_refused(key: str) -> None:
    with pytest.raises(UnsafeField, match="not a valid AMI header name"):
        check_action({"Action": "Ping", key: "x"})


def test_an_action_without_action_header_is_refused() -> None:
    with pytest.raises(UnsafeField, match="needs an Action header"):
        check_action({"Channel": "PJSIP/1001-00000001"})


def test_values_are_kept_exactly_and_lists_checked_item_by_item() -> None:
    checked = check_action({"Action": "Originate", "Timeout": 30000, "Variable": ["A=1", "B=张三"],
                            "CallerID": '"热线" <96666>'})
    assert checked == {"Action": "Originate", "Timeout": "30000", "Variable": ["A=1", "B=张三"],
                       "CallerID": '"热线" <96666>'}
    with pytest.raises(UnsafeField) as caught:
        check_action({"Action": "Originate", "Variable": ["A=1", "B=2\r\nAction: Hangup"]})
    assert caught.value.field == "Variable[1]"


@pytest.mark.parametrize("value", [None, 1.5, True, b"bytes"])
def test_values_of_other_types_are_refused(value: object) -> None:
    with pytest.raises(UnsafeField, match="value must be text or a whole number"):
        check_action({"Action": "Ping", "X": value})  # type: ignore[dict-item]


@pytest.mark.parametrize(
    ("raw", "clean"),
    [
        ("13800138000", "13800138000"),
        ("+86 138-0013-8000", "+8613800138000"),
        ("１３８００１３８０００", "13800138000"),  # full-width digits from some carriers
        ("<unknown>", ""),
        ("anonymous", ""),
        ("", ""),
        ("138\r\n0013\x008000", "13800138000"),
        ("*96#", "*96#"),
        ("1" * 500, "1" * 32),
        ("(010) 8888-6666", "01088886666"),
        ("12+34", "1234"),
    ],
)
def test_clean_caller_number(raw: str, clean: str) -> None:
    assert clean_caller_number(raw) == clean


@pytest.mark.parametrize(
    ("raw", "clean"),
    [
        ("张三", "张三"),
        ("  Zhang \t San  ", "Zhang San"),
        ('"Evil" <sip:x>\r\nAction: Hangup', "Evil sip:x Action: Hangup"),
        ("<unknown>", ""),
        ("name\x00with\x07controls", "name with controls"),
        ("长" * 100, "长" * 64),
    ],
)
def test_clean_caller_name(raw: str, clean: str) -> None:
    assert clean_caller_name(raw) == clean
