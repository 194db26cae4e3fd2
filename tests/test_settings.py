"""Settings: key resolution order, .env files read as data, errors that say what to do."""

from __future__ import annotations

from pathlib import Path

import pytest

from aivp.errors import ConfigError, MissingKeyError
from aivp.settings import Secret, Settings, redact


def test_fal_key_names_in_order(tmp_path: Path) -> None:
    assert Settings.from_env({"FAL_KEY": "a:b"}, project_dir=tmp_path).fal_key == Secret("a:b")
    assert Settings.from_env({"FAL_API_KEY": "c"}, project_dir=tmp_path).fal_key == Secret("c")
    both = Settings.from_env({"FAL_KEY_ID": "id", "FAL_KEY_SECRET": "sec"}, project_dir=tmp_path)
    assert both.fal_key == Secret("id:sec")
    assert Settings.from_env({"FAL_KEY_ID": "id"}, project_dir=tmp_path).fal_key is None
    assert Settings.from_env({"FAL_KEY": "first", "FAL_API_KEY": "second"}, project_dir=tmp_path).fal_key == Secret("first")


def test_missing_key_says_how_to_set_it(tmp_path: Path) -> None:
    s = Settings.from_env({}, project_dir=tmp_path)
    with pytest.raises(MissingKeyError) as e:
        s.require_key("fal")
    assert "FAL_KEY" in str(e.value) and "fal.ai/dashboard/keys" in str(e.value)


def test_secret_never_prints() -> None:
    s = Secret("abcdef:123456789")
    assert "abcdef" not in repr(s) and "123456789" not in str(s) and s.get() == "abcdef:123456789"
    assert "123456789" not in f"{s!r} {s}"


def test_dotenv_is_data_and_precedence(tmp_path: Path) -> None:
    marker = tmp_path / "pwned"
    (tmp_path / ".env").write_text(f'FAL_KEY=from-project\nAIVP_BUDGET_USD=3\nX=$(touch {marker})\n')
    home = tmp_path / "userhome"
    home.mkdir()
    (home / ".env").write_text("FAL_KEY=from-home\nAIVP_WAIT_S=7\n")
    s = Settings.from_env({"AIVP_HOME": str(home)}, project_dir=tmp_path)
    assert s.fal_key == Secret("from-project")  # project .env beats ~/.aivp/.env
    assert s.budget_usd == 3 and s.wait_s == 7
    assert not marker.exists()  # nothing in a .env is executed
    s2 = Settings.from_env({"AIVP_HOME": str(home), "FAL_KEY": "from-env"}, project_dir=tmp_path)
    assert s2.fal_key == Secret("from-env")  # the process environment beats both files


def test_bad_values_name_the_variable(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="AIVP_BUDGET_USD"):
        Settings.from_env({"AIVP_BUDGET_USD": "lots"}, project_dir=tmp_path)
    with pytest.raises(ConfigError, match="AIVP_FAL_QUEUE_URL"):
        Settings.from_env({"AIVP_FAL_QUEUE_URL": "ftp://x"}, project_dir=tmp_path)
    with pytest.raises(ConfigError, match="AIVP_LOG_LEVEL"):
        Settings.from_env({"AIVP_LOG_LEVEL": "loud"}, project_dir=tmp_path)


def test_base_urls_and_project(tmp_path: Path) -> None:
    s = Settings.from_env({"AIVP_PROJECT_DIR": str(tmp_path), "AIVP_FAL_QUEUE_URL": "http://127.0.0.1:9/q/"})
    assert s.project_dir == tmp_path.resolve() and s.fal_queue_url == "http://127.0.0.1:9/q"
    assert Settings.from_env({}, project_dir=tmp_path).fal_rest_url == "https://rest.fal.ai"


def test_redact_scrubs_both_halves() -> None:
    text = redact("Key idpart:secretpart and again secretpart", ["idpart:secretpart"])
    assert "secretpart" not in text and "idpart" not in text
