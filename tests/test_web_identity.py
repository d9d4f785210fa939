"""People and their secrets: salted scrypt hashes in a users file outside the warehouse, set from the CLI."""
from __future__ import annotations

import io
import json
import stat

import pytest

from weathervane.cli import main
from weathervane.governance.identity import IdentityError, UserStore, check_secret, hash_secret


def test_secrets_are_stored_only_as_salted_hashes(tmp_path):
    store = UserStore(tmp_path / "users.json")
    user = store.set_secret("Alice@Brand.example", "a long passphrase")
    assert user.user_id == "alice@brand.example"
    text = (tmp_path / "users.json").read_text()
    assert "a long passphrase" not in text
    stored = json.loads(text)["users"]["alice@brand.example"]["secret_hash"]
    assert stored.startswith("scrypt$") and stored != hash_secret("a long passphrase")  # a fresh salt each time
    assert stat.S_IMODE((tmp_path / "users.json").stat().st_mode) == 0o600
    assert store.authenticate("alice@brand.example", "a long passphrase") == user
    assert store.authenticate("ALICE@brand.example", "a long passphrase") == user
    assert store.authenticate("alice@brand.example", "a long passphrasE") is None
    assert store.authenticate("bob@brand.example", "a long passphrase") is None
    assert not check_secret("x", "md5$whatever")
    with pytest.raises(IdentityError, match="at least 12"):
        store.set_secret("alice@brand.example", "short")
    with pytest.raises(IdentityError, match="invalid user id"):
        store.set_secret("alice; drop", "a long passphrase")
    assert store.remove("alice@brand.example") and store.get("alice@brand.example") is None


def test_users_cli_reads_the_secret_from_stdin_and_refuses_bad_input_without_a_traceback(tmp_path, monkeypatch, capsys):
    users = str(tmp_path / "users.json")
    monkeypatch.setattr("sys.stdin", io.StringIO("correct horse battery\n"))
    assert main(["users", "set-password", "--user", "lead@brand.example", "--users-file", users]) == 0
    assert UserStore(users).authenticate("lead@brand.example", "correct horse battery") is not None
    monkeypatch.setattr("sys.stdin", io.StringIO("short\n"))
    assert main(["users", "set-password", "--user", "lead@brand.example", "--users-file", users]) == 2
    out = capsys.readouterr().out
    assert "at least 12" in out and "Traceback" not in out
    assert main(["users", "set-password", "--user", "bot@brand.example", "--generate", "--users-file", users]) == 0
    token = capsys.readouterr().out.strip().splitlines()[-1]
    assert UserStore(users).authenticate("bot@brand.example", token) is not None
    assert main(["users", "list", "--users-file", users]) == 0
    assert "bot@brand.example" in capsys.readouterr().out
    (tmp_path / "broken.json").write_text("{not json")
    assert main(["users", "list", "--users-file", str(tmp_path / "broken.json")]) == 2
    assert "broken.json" in capsys.readouterr().out
