"""The dial policy's rules as a table: what the hotline may dial out, and why not."""
from __future__ import annotations

import pytest

from callcenter.calls.dial_policy import DialPolicy, NumberRefused
from callcenter.config import load_settings

DEFAULT = DialPolicy()


@pytest.mark.parametrize(
    ("number", "dialled"),
    [
        ("13800138000", "13800138000"),        # mobile
        ("19912345678", "19912345678"),
        ("+8613800138000", "13800138000"),     # +86 taken off
        ("008613800138000", "13800138000"),    # 0086 taken off
        ("01062345678", "01062345678"),        # Beijing: 010 + 8 digits
        ("02187654321", "02187654321"),        # Shanghai: 021 + 8 digits
        ("+862187654321", "02187654321"),
        ("031185123456", "031185123456"),      # Shijiazhuang: 0311 + 8 digits
        ("08912345678", "08912345678"),        # Lhasa: 0891 + 7 digits
        ("62345678", "62345678"),              # local, 8 digits
        ("8123456", "8123456"),                # local, 7 digits
    ],
)
def test_accepted(number: str, dialled: str) -> None:
    assert DEFAULT.check(number) == dialled
    assert DEFAULT.allows(number)


@pytest.mark.parametrize(
    ("number", "reason"),
    [
        ("00882161234567", "international"),        # the toll-fraud number of the finding
        ("+882161234567", "international"),
        ("+12125550100", "international"),
        ("0085223456789", "international"),
        ("16012345678", "premium or service prefix 160"),
        ("16812345678", "premium or service prefix 168"),
        ("12590123456", "premium or service prefix 1259"),
        ("1795113800138000", "premium or service prefix 17951"),
        ("17909123456", "premium or service prefix 17909"),
        ("95105888", "premium or service prefix 95"),
        ("96123456", "premium or service prefix 96"),
        ("01095105888", "premium or service prefix 95"),   # a service number behind an area code
        ("95598", "premium or service prefix 95"),   # unless the settings allow it
        ("110", "not a mainland China"),
        ("4008123123", "not a mainland China"),
        ("8008123123", "not a mainland China"),
        ("12345678", "not a mainland China"),    # local numbers do not start with 1
        ("01012345678", "not a mainland China"),  # nor after an area code
        ("0012345", "international"),
        ("1380013800", "not a mainland China"),  # a mobile number one digit short
        ("138001380001", "not a mainland China"),
        ("+86", "no digits"),
        ("PJSIP/00882161234567@trunk", "only digits"),
        ("Local/1001@callcenter-outbound", "only digits"),
        ("138 0013 8000", "only digits"),
        ("13800138000\r\nAction: Originate", "only digits"),
        ("1380013800#", "only digits"),
        ("", "only digits"),
        ("1" * 21, "only digits"),
        (["13800138000"], "only digits"),
        (13800138000, "only digits"),
        (None, "only digits"),
    ],
)
def test_refused(number: object, reason: str) -> None:
    with pytest.raises(NumberRefused, match=reason) as caught:
        DEFAULT.check(number)
    assert isinstance(caught.value, ValueError) and caught.value.number == number
    assert not DEFAULT.allows(number)


def test_settings_add_allowed_and_refused_prefixes() -> None:
    settings = load_settings(overrides={"dial_policy": {"allowed_prefixes": ["95598", "00852"],
                                                        "refused_prefixes": ["139", "0085229"]}})
    policy = DialPolicy.from_settings(settings.dial_policy)
    assert policy.check("95598") == "95598"                # a listed service number
    assert policy.check("+85223456789") == "0085223456789"  # Hong Kong, allowed by the settings
    with pytest.raises(NumberRefused, match="prefix 0085229 is refused by the settings"):
        policy.check("+85229000000")                       # the settings' refusal wins
    with pytest.raises(NumberRefused, match="prefix 139 is refused by the settings"):
        policy.check("13900139000")
    assert policy.check("13800138000") == "13800138000"
    with pytest.raises(NumberRefused, match="international"):
        policy.check("+12125550100")                       # other countries still refused


def test_default_settings_are_mainland_only() -> None:
    policy = DialPolicy.from_settings(load_settings().dial_policy)
    assert policy == DialPolicy()
    assert not policy.allows("95598")
