"""Credentials in clear in a function's or job's environment: the names and value shapes that
give one away (shared by the Lambda and Cloud Run checks)."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

# Environment variable names that would carry a credential or a connection secret in clear.
CREDENTIAL_ENV_NAMES = re.compile(
    r"^(DATABASE_URL|AWS_SECRET_ACCESS_KEY|AWS_ACCESS_KEY_ID|AWS_SESSION_TOKEN|"
    r"AZURE_STORAGE_CONNECTION_STRING|AZURE_STORAGE_KEY|AZURE_STORAGE_ACCOUNT_KEY|"
    r"AZURE_CLIENT_SECRET|AZURE_CLIENT_CERTIFICATE_PASSWORD|GOOGLE_APPLICATION_CREDENTIALS|"
    r"GOOGLE_CREDENTIALS|.*PASSWORD.*|.*_TOKEN|.*_API_KEY)$")
CREDENTIAL_VALUES = re.compile(
    r"(://[^/\s:@]+:[^/\s@]+@|AccountKey=|SharedAccessSignature=|sig=[A-Za-z0-9%]{20,}|"
    r"-----BEGIN (RSA |EC |ENCRYPTED )?PRIVATE KEY-----|\"private_key\"\s*:|AKIA[0-9A-Z]{16})")


def _env_findings(variables: Mapping[str, Any], where: str) -> list[str]:
    out = []
    for name, value in sorted(variables.items()):
        if CREDENTIAL_ENV_NAMES.match(str(name)):
            out.append(f"{where} sets {name}, a credential, in clear: pass a secret reference "
                       "(Secrets Manager / Secret Manager ARN) and fetch it at run time")
        elif isinstance(value, str) and CREDENTIAL_VALUES.search(value):
            out.append(f"{where} variable {name} holds a credential in clear")
    return out
