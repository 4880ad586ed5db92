import pytest

from callcenter.config import ConfigError, load_settings


def test_defaults_load_and_three_rings_is_fifteen_seconds() -> None:
    settings = load_settings()
    assert settings.telephony.answer_within_s == 15.0
    assert [q.name for q in settings.queues][:2] == ["general", "leak"]


def test_bad_keys_are_named(tmp_path) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_text("[acd]\nring_timeout_s = 0\ncolour = 'red'\n")
    with pytest.raises(ConfigError) as err:
        load_settings(bad)
    message = str(err.value)
    assert "acd.ring_timeout_s" in message and "acd.colour" in message and str(bad) in message


def test_broken_toml_names_the_file(tmp_path) -> None:
    bad = tmp_path / "broken.toml"
    bad.write_text("[acd\n")
    with pytest.raises(ConfigError, match="not valid TOML"):
        load_settings(bad)


def test_environment_overrides_file(tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("CALLCENTER_AMI__PORT", "5039")
    assert load_settings().ami.port == 5039
    monkeypatch.setenv("CALLCENTER_AMI__PORT", "notaport")
    with pytest.raises(ConfigError, match=r"ami\.port"):
        load_settings()


def _agent(agent_id: str, **extra: object) -> dict[str, object]:
    return {"id": agent_id, "sip_password": "pw-0123456789", **extra}


def test_an_agents_other_phones_are_configured_endpoints() -> None:
    settings = load_settings(overrides={"agents": [_agent("1001", endpoints=["1101"]), _agent("1101")]})
    assert settings.agents[0].endpoints == ["1101"]
    with pytest.raises(ConfigError, match=r"agents 1001: endpoints \['2001'\] are not ids of \[\[agents\]\]"):
        load_settings(overrides={"agents": [_agent("1001", endpoints=["2001"])]})
    with pytest.raises(ConfigError, match=r"agents\.0\.endpoints\.0"):
        load_settings(overrides={"agents": [_agent("1001", endpoints=["PJSIP/00882161234567@trunk"])]})


def test_dial_policy_prefixes_are_digits() -> None:
    assert load_settings().dial_policy.allowed_prefixes == []
    with pytest.raises(ConfigError, match=r"dial_policy\.allowed_prefixes\.0"):
        load_settings(overrides={"dial_policy": {"allowed_prefixes": ["+852"]}})


def test_the_agent_endpoint_prefix_is_no_setting_any_more() -> None:
    with pytest.raises(ConfigError, match=r"asterisk\.agent_endpoint_prefix"):
        load_settings(overrides={"asterisk": {"agent_endpoint_prefix": "Local/"}})
