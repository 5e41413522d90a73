"""`minipacs ae add/list/remove` as a user runs them, good input and bad."""

from __future__ import annotations

import pytest

from tests.helpers import Pacs


def test_add_list_remove(pacs: Pacs) -> None:
    added = pacs.minipacs("ae", "add", "CLI_DEST", "host.docker.internal", "11113")
    assert added.returncode == 0, added.stderr
    listed = pacs.minipacs("ae", "list")
    assert listed.returncode == 0
    assert any(
        line.split() == ["CLI_DEST", "host.docker.internal", "11113"]
        for line in listed.stdout.splitlines()
    ), listed.stdout
    assert pacs.rows("SELECT host, port FROM remote_aes WHERE name = 'CLI_DEST'") == [
        ("host.docker.internal", 11113)
    ]
    # Adding again updates the address.
    assert pacs.minipacs("ae", "add", "CLI_DEST", "10.0.0.9", "104").returncode == 0
    assert pacs.rows("SELECT host, port FROM remote_aes WHERE name = 'CLI_DEST'") == [
        ("10.0.0.9", 104)
    ]
    removed = pacs.minipacs("ae", "remove", "CLI_DEST")
    assert removed.returncode == 0
    assert pacs.rows("SELECT 1 FROM remote_aes WHERE name = 'CLI_DEST'") == []


@pytest.mark.parametrize(
    ("name", "port", "message"),
    [
        ("BAD_PORT", "0", "out of range"),
        ("BAD_PORT", "65536", "out of range"),
        ("BAD_PORT", "eleven", "not a number"),
        ("A" * 17, "104", "longer than 16"),
        ("BACK\\SLASH", "104", "backslash"),
        ("CTRL\x01AE", "104", "control"),
        ("   ", "104", "empty"),
    ],
)
def test_bad_input_is_a_clear_error(pacs: Pacs, name: str, port: str, message: str) -> None:
    result = pacs.minipacs("ae", "add", name, "127.0.0.1", port)
    assert result.returncode != 0
    assert message in result.stderr, result.stderr
    assert "Traceback" not in result.stderr
    assert pacs.rows("SELECT 1 FROM remote_aes WHERE name = %s", (name.strip(),)) == []


def test_remove_unknown_is_an_error(pacs: Pacs) -> None:
    result = pacs.minipacs("ae", "remove", "NEVER_ADDED")
    assert result.returncode != 0
    assert "no remote AE named 'NEVER_ADDED'" in result.stderr


def test_remote_aes_setting_seeds_the_table(start_listener) -> None:
    pacs = start_listener(PACS_REMOTE_AES="SEEDED_A=hosta:1104,SEEDED_B=10.1.1.1:11113")
    rows = pacs.rows(
        "SELECT name, host, port FROM remote_aes WHERE name LIKE 'SEEDED_%' ORDER BY name"
    )
    assert rows == [("SEEDED_A", "hosta", 1104), ("SEEDED_B", "10.1.1.1", 11113)]
