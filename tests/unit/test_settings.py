"""Configuration layers and validation."""

from __future__ import annotations

from pathlib import Path

import pytest

from config import ConfigError, Settings, load_settings


def test_defaults_when_nothing_is_set():
    settings = load_settings(environ={})
    assert settings == Settings()
    assert settings.anonymity_min_responses == 5
    assert settings.database_url.startswith("sqlite:///")


def test_file_then_environment_then_overrides(tmp_path: Path):
    config = tmp_path / "mspmon.toml"
    config.write_text(
        'timezone = "Europe/Helsinki"\nanonymity_min_responses = 8\ndimensions = ["country", "service"]\n',
        encoding="utf-8",
    )
    environ = {"MSPMON_CONFIG": str(config), "MSPMON_ANONYMITY_MIN_RESPONSES": "10"}
    settings = load_settings(environ=environ)
    assert settings.timezone == "Europe/Helsinki"
    assert settings.anonymity_min_responses == 10  # environment beats the file
    assert settings.dimensions == ("country", "service")
    assert load_settings(environ=environ, overrides={"anonymity_min_responses": 3}).anonymity_min_responses == 3


def test_mspmon_table_in_toml_and_list_from_environment(tmp_path: Path):
    config = tmp_path / "c.toml"
    config.write_text("[mspmon]\nsmtp_port = 2525\n", encoding="utf-8")
    settings = load_settings(environ={"MSPMON_CONFIG": str(config), "MSPMON_DIMENSIONS": "country, channel"})
    assert settings.smtp_port == 2525
    assert settings.dimensions == ("country", "channel")


@pytest.mark.parametrize(
    ("environ", "named"),
    [
        ({"MSPMON_ANONYMITY_MIN_RESPONSES": "abc"}, "MSPMON_ANONYMITY_MIN_RESPONSES"),
        ({"MSPMON_ANONYMITY_MIN_RESPONSES": "0"}, "MSPMON_ANONYMITY_MIN_RESPONSES"),
        ({"MSPMON_TIMEZONE": "Mars/Olympus"}, "MSPMON_TIMEZONE"),
        ({"MSPMON_SMTP_SECURITY": "tls"}, "MSPMON_SMTP_SECURITY"),
        ({"MSPMON_DATABASE_URL": "mysql://x"}, "MSPMON_DATABASE_URL"),
        ({"MSPMON_DIGEST_HOUR": "24"}, "MSPMON_DIGEST_HOUR"),
        ({"MSPMON_ANONYMITY": "5"}, "MSPMON_ANONYMITY"),
    ],
)
def test_bad_values_name_the_key(environ, named):
    with pytest.raises(ConfigError, match=named):
        load_settings(environ=environ)


def test_bad_file_errors_name_the_file_and_key(tmp_path: Path):
    missing = tmp_path / "nope.toml"
    with pytest.raises(ConfigError, match="does not exist"):
        load_settings(environ={"MSPMON_CONFIG": str(missing)})
    broken = tmp_path / "broken.toml"
    broken.write_text("timezone = \n", encoding="utf-8")
    with pytest.raises(ConfigError, match="not valid TOML"):
        load_settings(environ={"MSPMON_CONFIG": str(broken)})
    unknown = tmp_path / "unknown.toml"
    unknown.write_text("colour = 'blue'\n", encoding="utf-8")
    with pytest.raises(ConfigError, match="colour"):
        load_settings(environ={"MSPMON_CONFIG": str(unknown)})
    wrong_type = tmp_path / "wrong.toml"
    wrong_type.write_text("smtp_port = 'twenty-five'\n", encoding="utf-8")
    with pytest.raises(ConfigError, match="smtp_port"):
        load_settings(environ={"MSPMON_CONFIG": str(wrong_type)})


def test_secrets_do_not_appear_in_repr():
    settings = load_settings(environ={"MSPMON_SMTP_PASSWORD": "hunter2", "MSPMON_SECRET_KEY": "s3cret-s3cret-s3cret"})
    assert settings.smtp_password == "hunter2"
    assert "hunter2" not in repr(settings) and "s3cret" not in repr(settings)


def test_our_packages_are_the_ones_imported():
    """`config`, `detectors` and `notifications` are also unrelated PyPI packages."""
    import config
    import detectors
    import monitor
    import notifications
    import web

    root = Path(monitor.__file__).resolve().parents[1]
    for module in (config, detectors, notifications, web):
        assert Path(module.__file__).resolve().parents[1] == root, module.__file__


def test_digest_delivery_settings_are_validated():
    settings = load_settings(environ={"MSPMON_DIGEST_GRACE_HOURS": "6", "MSPMON_DIGEST_MAX_ATTEMPTS": "3"})
    assert settings.digest_grace_hours == 6.0 and settings.digest_max_attempts == 3
    for key, value in (("DIGEST_MAX_ATTEMPTS", "0"), ("DIGEST_RETRY_SECONDS", "0"), ("DIGEST_LEASE_SECONDS", "1"),
                       ("DIGEST_GRACE_HOURS", "-1")):
        with pytest.raises(ConfigError, match=f"MSPMON_{key}"):
            load_settings(environ={f"MSPMON_{key}": value})


@pytest.mark.parametrize(
    ("key", "value", "message"),
    [
        ("SMTP_TIMEOUT_SECONDS", "nan", "finite"),
        ("SMTP_TIMEOUT_SECONDS", "inf", "finite"),
        ("DIGEST_RETRY_SECONDS", "NaN", "finite"),
        ("DIGEST_LEASE_SECONDS", "-inf", "finite"),
        ("BASE_URL", "javascript:alert(document.cookie)", "http:// or https://"),
        ("BASE_URL", "ftp://files.example.com", "http:// or https://"),
        ("BASE_URL", "https://", "http:// or https://"),
        ("BASE_URL", "https://a.example.com/\r\nX: y", "http:// or https://"),
        ("SECRET_KEY", " " * 40, "at least 16 characters that are not blanks"),
        ("SECRET_KEY", "short", "at least 16"),
    ],
)
def test_values_that_look_valid_but_are_not_are_refused(key, value, message):
    with pytest.raises(ConfigError, match=f"MSPMON_{key}: .*{message}"):
        load_settings(environ={f"MSPMON_{key}": value})


def test_good_values_still_load():
    settings = load_settings(environ={"MSPMON_BASE_URL": "https://mspmon.example.com/app", "MSPMON_SECRET_KEY": "x" * 16,
                                      "MSPMON_SMTP_TIMEOUT_SECONDS": "2.5"})
    assert settings.smtp_timeout_seconds == 2.5


@pytest.mark.parametrize(
    "url",
    ["sqlite:////nonexistent-mspmon-folder/sub/mspmon.db", "postgresql+psycopg://mspmon@127.0.0.1:1/mspmon"],
)
@pytest.mark.parametrize(
    "command",
    [["db", "upgrade"], ["db", "current"], ["init-db"], ["transitions", "list"], ["users", "list"], ["tokens", "list"],
     ["subscriptions", "list"], ["digest", "send"], ["analyze"], ["ingest", "x.csv"], ["serve"]],
)
def test_a_database_that_cannot_be_opened_is_one_line_naming_database_url(url, command):
    from click.testing import CliRunner

    from monitor.cli.commands import main

    result = CliRunner(env={"MSPMON_DATABASE_URL": url, "MSPMON_CONFIG": None}).invoke(main, command)
    assert result.exit_code == 1
    assert "Traceback" not in result.output and result.exception is None or isinstance(result.exception, SystemExit)
    (line,) = result.output.strip().splitlines()
    assert line.startswith("Error: database_url: cannot open")


def test_the_web_view_names_database_url_too():
    from web import create_app

    settings = load_settings(environ={}, overrides={"database_url": "sqlite:////nonexistent-mspmon-folder/x.db",
                                                    "secret_key": "x" * 20})
    with pytest.raises(ConfigError, match="^database_url: cannot open .*folder .* does not exist"):
        create_app(settings)
    with pytest.raises(ConfigError, match="at least 16"):
        create_app(Settings(secret_key=" " * 20))
