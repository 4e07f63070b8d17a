"""A database that holds encrypted data never starts without the key that encrypts it (SQLite and PostgreSQL)."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest
from cryptography.fernet import Fernet
from sqlalchemy import text

from bot.cli import main
from bot.clock import FakeClock
from bot.security.crypto import SecretBox, key_file_for_sqlite
from bot.security.installation import EncryptionKeyMismatch
from bot.security.mfa import MfaService
from bot.settings import Settings
from store.db import Database


def _settings(url: str, key: str | None = None) -> Settings:
    return Settings(ACCESSBOT_DATABASE_URL=url, ACCESSBOT_ENCRYPTION_KEY=key)  # type: ignore[call-arg]


def _enrol(db: Database, box: SecretBox) -> None:
    """Something only the key can read: an MFA secret."""
    assert MfaService(db, FakeClock(), box).enroll("UALICE", "alice@example.com") is not None


def test_an_environment_key_must_be_the_databases_key(db: Database) -> None:
    first, other = Fernet.generate_key().decode(), Fernet.generate_key().decode()
    box = _settings(db.url, first).secret_box()
    _enrol(db, box)

    with pytest.raises(EncryptionKeyMismatch) as refused:
        _settings(db.url, other).secret_box()
    message = str(refused.value)
    assert "\n" not in message and message.startswith("ACCESSBOT_ENCRYPTION_KEY is not the key that encrypts")
    assert first not in message and other not in message

    assert _settings(db.url, first).secret_box().decrypt(box.encrypt("x")) == "x"
    rotated = _settings(db.url, f"{other},{first}").secret_box()  # a new key first, the old one kept: rotation
    assert rotated.decrypt(box.encrypt("y")) == "y"


def test_a_database_with_secrets_from_before_the_check_value_is_checked_against_them(db: Database) -> None:
    first, other = Fernet.generate_key().decode(), Fernet.generate_key().decode()
    _enrol(db, SecretBox([first]))  # written before any start stored a check value
    with db.begin() as session:
        assert session.execute(text("SELECT count(*) FROM installation WHERE key_check IS NOT NULL")).scalar() == 0

    with pytest.raises(EncryptionKeyMismatch, match="is not the key that encrypts"):
        _settings(db.url, other).secret_box()
    _settings(db.url, first).secret_box()
    with db.begin() as session:
        assert session.execute(text("SELECT count(*) FROM installation WHERE key_check IS NOT NULL")).scalar() == 1


def test_postgres_still_needs_a_key(db: Database) -> None:
    if not db.is_postgres:
        pytest.skip("SQLite makes a key file")
    with pytest.raises(ValueError, match="ACCESSBOT_ENCRYPTION_KEY is required with PostgreSQL"):
        _settings(db.url).secret_box()


def test_a_lost_sqlite_key_file_is_never_silently_replaced(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path}/accessbot.db"
    key_file = key_file_for_sqlite(url)
    box = _settings(url).secret_box()
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    original = key_file.read_text()
    db = Database(url)
    _enrol(db, box)

    key_file.unlink()
    with pytest.raises(EncryptionKeyMismatch) as refused:
        _settings(url).secret_box()
    assert str(refused.value).startswith(f"the key file {key_file} is missing, but the database")
    assert not key_file.exists(), "no new key was made"

    key_file.write_text(Fernet.generate_key().decode() + "\n")  # a valid key, but another one
    with pytest.raises(EncryptionKeyMismatch, match=f"the key file {key_file} is not the key that encrypts"):
        _settings(url).secret_box()

    key_file.write_text(original)
    assert _settings(url).secret_box().decrypt(box.encrypt("z")) == "z"
    db.dispose()


def test_a_new_sqlite_database_gets_its_key_file(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path}/fresh.db"
    _settings(url).secret_box()
    assert key_file_for_sqlite(url).exists()
    key_file_for_sqlite(url).unlink()
    with pytest.raises(EncryptionKeyMismatch, match="is missing"):  # the check value alone is encrypted data
        _settings(url).secret_box()


def test_the_cli_refuses_a_wrong_key_with_one_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from tests.bot.fixtures import CONFIG

    config = tmp_path / "accessbot.yml"
    config.write_text(CONFIG)
    monkeypatch.setenv("ACCESSBOT_CONFIG", str(config))
    monkeypatch.setenv("ACCESSBOT_DATABASE_URL", f"sqlite:///{tmp_path}/cli.db")
    monkeypatch.setenv("ACCESSBOT_ENCRYPTION_KEY", Fernet.generate_key().decode())
    assert main(["requests", "list"]) == 0
    capsys.readouterr()

    monkeypatch.setenv("ACCESSBOT_ENCRYPTION_KEY", Fernet.generate_key().decode())
    assert main(["requests", "list"]) == 1
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err.count("\n") == 1 and captured.err.startswith(
        "error: ACCESSBOT_ENCRYPTION_KEY is not the key that encrypts the data in the database"
    )


def test_rotation_moves_the_check_value_to_the_new_key_but_data_still_needs_the_old(db: Database) -> None:
    old, new = Fernet.generate_key().decode(), Fernet.generate_key().decode()
    _settings(db.url, old).secret_box()
    _settings(db.url, f"{new},{old}").secret_box()
    with db.begin() as session:
        check = session.execute(text("SELECT key_check FROM installation")).scalar_one()
    assert SecretBox([new]).decrypt(check), "the check value is now the new key's"
    _settings(db.url, new).secret_box()  # nothing encrypted but the check: the old key may go

    _enrol(db, SecretBox([old]))  # a secret still under the old key (not re-encrypted)
    with pytest.raises(EncryptionKeyMismatch, match="is not the key that encrypts"):
        _settings(db.url, new).secret_box()
    _settings(db.url, f"{new},{old}").secret_box()
