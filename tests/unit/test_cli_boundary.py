"""The CLI as a new user meets it with a broken setting: one line on stderr naming the setting
and the fix, exit 3 (configuration) and never 1 (a breach) or a traceback, before any network
call. Each subcommand takes only its own flags; numbers must make sense; an unexpected
exception is exit 70; logging is configured once, library warnings included."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import pytest
from vo2dr import cli
from vo2dr.commands import list as list_command
from vo2dr.exitcodes import ExitCode
from vo2dr.settings import COMMAND_SETTINGS, VARIABLES

ROOT = Path(__file__).resolve().parents[2]
# A port nothing listens on: if a command contacted a store it would fail (slowly), not
# give the configuration error these tests expect.
DEAD = "http://127.0.0.1:9"


@pytest.fixture
def env(monkeypatch, tmp_path):
    for var, _ in VARIABLES.values():
        monkeypatch.delenv(var, raising=False)
    monkeypatch.chdir(tmp_path)  # no Pulumi.<env>.yaml to find by accident
    monkeypatch.setenv("VO2DR_ENVIRONMENT", "staging")
    monkeypatch.setenv("VO2DR_STACK_FILE", str(ROOT / "Pulumi.staging.yaml"))
    monkeypatch.setenv("STORAGE_EMULATOR_HOST", DEAD)
    monkeypatch.setenv("AWS_ENDPOINT_URL", DEAD)
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    return monkeypatch


def run(capsys, *argv: str) -> tuple[int, str, str]:
    code = cli.main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


BROKEN = [
    # (environment, argv, what the one line must say)
    ({"VO2DR_AZURE_CONTAINER_URL": "htps//vo2drstaging.blob.core.windows.net/backups"},
     ["list"], "VO2DR_AZURE_CONTAINER_URL 'htps//vo2drstaging.blob.core.windows.net/backups' "
     "is not a container URL: use https://<account>.blob.core.windows.net/<container>"),
    ({"VO2DR_AZURE_CONTAINER_URL": "https://vo2drstaging.blob.core.windows.net"},
     ["status"], "VO2DR_AZURE_CONTAINER_URL"),
    ({}, ["status"], "no store enabled: set VO2DR_S3_BUCKET, VO2DR_GCS_BUCKET and/or "
     "VO2DR_AZURE_CONTAINER_URL"),
    ({}, ["list"], "no store enabled"),
    ({}, ["verify", "--source", "all"], "no store enabled"),
    ({"VO2DR_GCS_BUCKET": "b", "DATABASE_URL": "postgresql://app@db:5432",
      "VO2DR_RECOVERY_PUBLIC_KEY": "unused"},
     ["backup", "--data-class", "full", "--no-progress"],
     "DATABASE_URL names no database: add /<dbname> to the URL"),
    ({"VO2DR_GCS_BUCKET": "b", "DATABASE_URL": "postgres:/app:secretpw@db/x",
      "VO2DR_RECOVERY_PUBLIC_KEY": "unused"},
     ["backup", "--data-class", "full", "--no-progress"], "DATABASE_URL is not a PostgreSQL"),
    ({"VO2DR_GCS_BUCKET": "b"}, ["backup", "--data-class", "full"],
     "missing setting: DATABASE_URL (or --database-url), VO2DR_RECOVERY_PUBLIC_KEY"),
    ({"VO2DR_GCS_BUCKET": "gs://vo2dr-staging"}, ["list"],
     "VO2DR_GCS_BUCKET 'gs://vo2dr-staging' is not a bucket name"),
    ({"VO2DR_GCS_BUCKET": "b"}, ["restore", "--source", "gcs", "--target-url",
                                "postgresql://u@h:5432"], "--target-url names no database"),
    ({"VO2DR_GCS_BUCKET": "b", "VO2DR_ENVIRONMENT": ""}, ["list"],
     "missing setting: VO2DR_ENVIRONMENT (or --environment)"),
    ({"VO2DR_GCS_BUCKET": "b", "VO2DR_STACK_FILE": ""}, ["status"],
     "no strategy: set VO2DR_STRATEGY"),
    ({"VO2DR_GCS_BUCKET": "b", "VO2DR_STRATEGY": "{"}, ["status"],
     "VO2DR_STRATEGY is not valid JSON"),
    ({"VO2DR_S3_BUCKET": "b"}, ["drill"], "missing setting: VO2DR_DRILL_DATABASE_URL"),
    ({"VO2DR_GCS_BUCKET": "b", "VO2DR_AZURE_TENANT_ID": "t"}, ["list"],
     "VO2DR_AZURE_CLIENT_ID is not set"),
    ({"VO2DR_GCS_BUCKET": "b"}, ["verify", "--source", "gcs", "--recovery-key", "/no/key.pem"],
     "cannot read --recovery-key /no/key.pem"),
    ({"VO2DR_GCS_BUCKET": "b"}, ["verify", "--source", "gcs"],
     "missing setting: VO2DR_SIGNING_PUBLIC_KEYS (or --signing-public-keys)"),
    ({"VO2DR_GCS_BUCKET": "b", "VO2DR_SIGNING_PUBLIC_KEYS": "not a key"}, ["status"],
     "VO2DR_SIGNING_PUBLIC_KEYS is neither PEM text nor a readable file"),
]


@pytest.mark.parametrize(("variables", "argv", "message"), BROKEN,
                         ids=[f"{' '.join(a)}:{m[:30]}" for _, a, m in BROKEN])
def test_a_broken_setting_is_one_line_and_exit_3_before_any_network(env, capsys, variables,
                                                                    argv, message):
    for var, value in variables.items():
        env.setenv(var, value)
    started = time.monotonic()
    code, _, err = run(capsys, *argv)
    assert code == ExitCode.CONFIG == 3
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith(f"vo2dr {argv[0]}: configuration error: ")
    assert message in lines[0]
    assert "secretpw" not in err
    assert time.monotonic() - started < 5  # nothing was retried against a dead endpoint


@pytest.mark.parametrize("argv", [
    ["status", "--check-last", "-3"], ["status", "--grace-seconds", "-100"],
    ["restore", "--source", "s3", "--target-url", "postgresql://h/db", "--jobs", "0"],
    ["backup", "--data-class", "full", "--null-destinations", "-1"],
    ["status", "--check-last", "two"],
])
def test_negative_or_malformed_numbers_are_refused(env, capsys, argv):
    with pytest.raises(SystemExit) as info:
        cli.main(argv)
    assert info.value.code == ExitCode.CONFIG
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and f"vo2dr {argv[0]}: error: argument {argv[-2]}" in err[0]


def test_each_subcommand_takes_only_its_own_flags(env, capsys):
    parser = cli.build_parser()
    sub = next(a for a in parser._actions if a.dest == "command").choices
    for command, names in COMMAND_SETTINGS.items():
        flags = set(sub[command]._option_string_actions)
        own = {VARIABLES[n][1] for n in names}
        assert own <= flags, command
        assert not ({flag for _, flag in VARIABLES.values()} - own) & flags - {"--data-class"}, \
            command
    # Readers decrypt with the configured KMS key only (issue 13), so restore takes it; list
    # and status never decrypt.
    assert "--kms-key-id" in sub["restore"]._option_string_actions
    assert "--kms-key-id" not in sub["status"]._option_string_actions
    assert "--database-url" not in sub["status"]._option_string_actions
    with pytest.raises(SystemExit) as info:
        cli.main(["list", "--database-url", "postgresql://h/db"])
    assert info.value.code == ExitCode.CONFIG
    err = capsys.readouterr().err.strip().splitlines()
    assert err == ["vo2dr: error: unrecognized arguments: --database-url postgresql://h/db "
                   "(see vo2dr --help)"]


def test_help_lists_every_setting_and_the_exit_codes(capsys):
    for command, names in COMMAND_SETTINGS.items():
        with pytest.raises(SystemExit):
            cli.main([command, "--help"])
        out = capsys.readouterr().out
        for name in names:
            assert VARIABLES[name][0] in out, (command, name)
        assert "3   configuration error" in out and "70  internal error" in out
    with pytest.raises(SystemExit):
        cli.main(["--help"])
    assert "1   the command ran and found a problem" in capsys.readouterr().out


def test_an_unexpected_exception_is_exit_70_not_a_breach(env, capsys, monkeypatch):
    def boom(args):
        raise KeyError("bucket")

    monkeypatch.setattr(list_command, "run", boom)
    code, _, err = run(capsys, "list")
    assert code == ExitCode.INTERNAL == 70
    assert err.strip().splitlines() == [
        "vo2dr list: internal error: KeyError: 'bucket' (a bug in vo2dr; rerun with --debug "
        "for the traceback)"]
    code, _, err = run(capsys, "--debug", "list")
    assert code == 70 and "Traceback (most recent call last)" in err


def test_a_local_os_error_is_a_failed_run(env, capsys, monkeypatch):
    def full(args):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(list_command, "run", full)
    code, _, err = run(capsys, "list")
    assert code == ExitCode.FAILED
    assert err.strip() == "vo2dr list: error: OSError: [Errno 28] No space left on device"


def test_logging_is_configured_once_and_library_warnings_are_prefixed(tmp_path):
    # A subprocess: pytest captures warnings itself.
    script = tmp_path / "warn.py"
    script.write_text(
        "import logging, sys, warnings\n"
        "from vo2dr import cli\n"
        "from vo2dr.commands import list as list_command\n"
        "def run(args):\n"
        "    warnings.warn('a library says so', UserWarning)\n"
        "    logging.getLogger('azure.identity').warning('line one\\nline two')\n"
        "    logging.getLogger('vo2dr.backup').info('not shown without -v')\n"
        "    return 0\n"
        "list_command.run = run\n"
        "sys.exit(cli.main(['list']))\n")
    proc = subprocess.run([sys.executable, str(script)], capture_output=True, text=True,
                          check=False, cwd=ROOT)
    assert proc.returncode == 0, proc.stderr
    assert proc.stderr.splitlines() == [
        "vo2dr list: warning: UserWarning: a library says so",
        "vo2dr list: warning: azure.identity: line one"]
