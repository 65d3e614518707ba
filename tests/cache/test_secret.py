import os
import stat
import threading

import pytest

from claude_force_nb._cache.secret import (
    FOREIGN,
    SECRET_FILENAME,
    TAMPERED,
    VALID,
    Signer,
    _read_secret,
    key_id,
    load_signer,
)
from claude_force_nb._errors import CacheFileError


def mode_of(path):
    return stat.S_IMODE(os.stat(path).st_mode)


@pytest.mark.skipif(os.name != "posix", reason="POSIX permissions")
def test_generated_secret_is_private_random_and_reused(tmp_path):
    signer = load_signer(tmp_path)
    path = tmp_path / SECRET_FILENAME
    assert signer.source == str(path)
    assert mode_of(path) == 0o600
    secret = path.read_bytes().strip()
    assert len(secret) == 64 and int(secret, 16) >= 0
    again = load_signer(tmp_path)
    assert again.verify(b"data", signer.sign(b"data"), signer.key_id) == VALID
    assert path.read_bytes().strip() == secret
    assert load_signer(tmp_path / "elsewhere").sign(b"data") != signer.sign(b"data")


def test_env_secrets_need_no_file(tmp_path):
    signer = load_signer(tmp_path, [b"from-env"])
    assert signer.source == "env"
    assert not (tmp_path / SECRET_FILENAME).exists()
    assert Signer([b"from-env"], "x").verify(b"payload", signer.sign(b"payload"), signer.key_id) == VALID


def test_secret_never_appears_in_repr(tmp_path):
    signer = load_signer(tmp_path, ["hunter2"])
    assert "hunter2" not in repr(signer) and "hunter2" not in signer.key_id


def test_file_secret_can_be_pasted_into_the_environment(tmp_path):
    from_file = load_signer(tmp_path)
    text = (tmp_path / SECRET_FILENAME).read_text().strip()
    assert load_signer(tmp_path / "ci", [text]).verify(b"row", from_file.sign(b"row"), from_file.key_id) == VALID


def test_rotation_signs_with_newest_and_verifies_with_any():
    old = Signer([b"old"], "env")
    rotated = Signer([b"new", b"old"], "env")
    assert rotated.key_id == key_id(b"new") != old.key_id
    assert rotated.verify(b"row", old.sign(b"row"), old.key_id) == VALID
    assert rotated.sign(b"row") == Signer([b"new"], "env").sign(b"row")
    # A row signed with a secret this signer does not hold is another kernel's, not a forgery.
    assert old.verify(b"row", rotated.sign(b"row"), rotated.key_id) == FOREIGN


def test_a_changed_row_under_a_key_held_here_is_tampered():
    signer = Signer([b"k"], "env")
    assert signer.verify(b"row!", signer.sign(b"row"), signer.key_id) == TAMPERED


@pytest.mark.parametrize("signature", [None, "text", b"", b"\x00" * 32, 12])
def test_malformed_signatures_fail(signature):
    signer = Signer([b"k"], "env")
    assert signer.verify(b"row", signature, signer.key_id) == TAMPERED


@pytest.mark.parametrize("signed_by", [None, 3, b"id", "0123456789abcdef"])
def test_an_unknown_or_malformed_key_id_is_foreign(signed_by):
    signer = Signer([b"k"], "env")
    assert signer.verify(b"row", signer.sign(b"row"), signed_by) == FOREIGN


def test_concurrent_creators_agree_on_one_secret(tmp_path):
    barrier = threading.Barrier(8)
    results = []

    def create():
        barrier.wait()
        results.append(load_signer(tmp_path).sign(b"x"))

    threads = [threading.Thread(target=create) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(set(results)) == 1


@pytest.mark.skipif(os.name != "posix", reason="POSIX permissions")
def test_readable_secret_file_is_tightened(tmp_path):
    path = tmp_path / SECRET_FILENAME
    path.write_text("abc\n")
    os.chmod(path, 0o644)
    load_signer(tmp_path)
    assert mode_of(path) == 0o600


def test_empty_secret_file_names_the_fix(tmp_path):
    path = tmp_path / SECRET_FILENAME
    path.write_bytes(b"")
    with pytest.raises(CacheFileError, match="Delete it"):
        _read_secret(path, attempts=2, pause=0)


def test_empty_secrets_are_refused():
    with pytest.raises(ValueError, match="non-empty secret"):
        Signer([b""], "env")
