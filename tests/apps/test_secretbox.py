"""The key file: created once with mode 0600, never replaced, refused when others can read it."""

from __future__ import annotations

import os
import stat
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from cryptography.fernet import Fernet

from shipway.apps.secretbox import KEY_FILE, SecretBox
from shipway.errors import SecretKeyError


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_a_value_survives_the_round_trip_and_is_not_stored_plain(tmp_path: Path) -> None:
    box = SecretBox.load(tmp_path / "data")
    sealed = box.encrypt("hunter2 ünïcode")
    assert "hunter2" not in sealed
    assert SecretBox.load(tmp_path / "data").decrypt(sealed) == "hunter2 ünïcode"


def test_the_key_is_created_on_first_need_with_mode_0600(tmp_path: Path) -> None:
    key = tmp_path / "data" / KEY_FILE
    assert not key.exists()
    SecretBox.load(tmp_path / "data")
    assert mode(key) == 0o600
    assert os.listdir(key.parent) == [KEY_FILE]


def test_an_existing_key_is_used_and_never_replaced(tmp_path: Path) -> None:
    original = Fernet.generate_key()
    key = tmp_path / KEY_FILE
    key.write_bytes(original + b"\n")
    key.chmod(0o600)
    sealed = Fernet(original).encrypt(b"kept").decode()
    assert SecretBox.load(tmp_path).decrypt(sealed) == "kept"
    assert key.read_bytes() == original + b"\n"


def test_processes_starting_together_agree_on_one_key(tmp_path: Path) -> None:
    with ThreadPoolExecutor(8) as pool:
        boxes = list(pool.map(lambda _: SecretBox.load(tmp_path), range(16)))
    sealed = boxes[0].encrypt("same")
    assert {box.decrypt(sealed) for box in boxes} == {"same"}
    assert os.listdir(tmp_path) == [KEY_FILE]


@pytest.mark.parametrize("loose", [0o644, 0o640, 0o604, 0o660])
def test_a_key_others_can_read_is_refused_naming_the_fix(tmp_path: Path, loose: int) -> None:
    key = tmp_path / KEY_FILE
    key.write_bytes(Fernet.generate_key())
    key.chmod(loose)
    with pytest.raises(SecretKeyError) as refused:
        SecretBox.load(tmp_path)
    assert str(key) in refused.value.message
    assert f"chmod 600 {key}" in refused.value.message
    assert key.read_bytes() and mode(key) == loose


def test_a_damaged_key_file_is_a_clear_error(tmp_path: Path) -> None:
    key = tmp_path / KEY_FILE
    key.write_text("not a key")
    key.chmod(0o600)
    with pytest.raises(SecretKeyError, match="does not hold a valid key"):
        SecretBox.load(tmp_path)


def test_a_value_sealed_with_another_key_is_a_clear_error(tmp_path: Path) -> None:
    sealed = SecretBox(Fernet.generate_key()).encrypt("s3cret")
    box = SecretBox.load(tmp_path)
    for token in (sealed, "garbage", "ünï"):
        with pytest.raises(SecretKeyError, match="cannot be decrypted with the key in") as e:
            box.decrypt(token)
        assert str(tmp_path / KEY_FILE) in e.value.message
