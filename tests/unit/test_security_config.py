from pathlib import Path

import pytest

from minipacs.config import ConfigError, Settings, parse_ae_list


def test_allowed_aes() -> None:
    assert parse_ae_list("") == ()
    assert parse_ae_list("MODALITY1, VIEWER ,,") == ("MODALITY1", "VIEWER")
    with pytest.raises(ValueError):
        parse_ae_list("OK," + "X" * 17)
    assert Settings.from_env({"PACS_ALLOWED_AES": "A,B"}).allowed_aes == ("A", "B")


def test_tls_files_must_exist_and_come_in_pairs(tmp_path: Path) -> None:
    cert, key = tmp_path / "c.pem", tmp_path / "k.pem"
    cert.write_text("x")
    key.write_text("x")
    settings = Settings.from_env({"PACS_TLS_CERT": str(cert), "PACS_TLS_KEY": str(key)})
    assert (settings.tls_cert, settings.tls_key, settings.tls_ca) == (cert, key, None)
    for env, complaint in [
        ({"PACS_TLS_CERT": str(cert)}, "PACS_TLS_KEY"),
        ({"PACS_TLS_CA": str(cert)}, "PACS_TLS_CA"),
        ({"PACS_TLS_CERT": str(tmp_path / "missing"), "PACS_TLS_KEY": str(key)}, "no such file"),
    ]:
        with pytest.raises(ConfigError, match=complaint):
            Settings.from_env(env)


def test_temp_sweep_age() -> None:
    assert Settings.from_env({}).temp_sweep_age_seconds == 600
    assert Settings.from_env({"PACS_TEMP_SWEEP_AGE_SECONDS": "0"}).temp_sweep_age_seconds == 0
    with pytest.raises(ConfigError, match="PACS_TEMP_SWEEP_AGE_SECONDS"):
        Settings.from_env({"PACS_TEMP_SWEEP_AGE_SECONDS": "-1"})
