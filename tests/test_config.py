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
