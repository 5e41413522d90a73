from pathlib import Path

import pytest

from minipacs.config import ConfigError, RemoteAE, Settings, parse_remote_aes


def test_defaults_match_env_example() -> None:
    settings = Settings.from_env({})
    assert settings.ae_title == "MINI_PACS"
    assert settings.port == 11112
    assert settings.duplicate_policy == "keep"
    assert settings.max_associations == 50
    assert settings.enable_worklist and settings.enable_mpps
    documented = (Path(__file__).parents[2] / ".env.example").read_text()
    for line in documented.splitlines():
        if line and not line.startswith("#") and "=" in line:
            name, _, value = line.partition("=")
            # Every documented default parses and equals the built-in one.
            assert Settings.from_env({name: value}) == settings, name


def test_every_bad_variable_is_reported_at_once() -> None:
    with pytest.raises(ConfigError) as info:
        Settings.from_env(
            {
                "PACS_PORT": "70000",
                "PACS_DUPLICATE_POLICY": "maybe",
                "PACS_ENABLE_MPPS": "perhaps",
                "PACS_AE_TITLE": "A" * 17,
            }
        )
    message = str(info.value)
    for name in ("PACS_PORT", "PACS_DUPLICATE_POLICY", "PACS_ENABLE_MPPS", "PACS_AE_TITLE"):
        assert name in message
    assert "\n" not in message


def test_remote_aes() -> None:
    assert parse_remote_aes("DEST_SCP=host.docker.internal:11113, B=10.0.0.1:104") == (
        RemoteAE("DEST_SCP", "host.docker.internal", 11113),
        RemoteAE("B", "10.0.0.1", 104),
    )
    assert parse_remote_aes("") == ()
    for bad in ("DEST", "DEST=host", "DEST=host:0", "=host:104", "A\\B=h:1"):
        with pytest.raises(ValueError):
            parse_remote_aes(bad)
