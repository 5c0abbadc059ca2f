"""``vo2max-dr:recordPublicKeys``: the drill record key's public half, validated once in
``infra.config`` like ``signingPublicKeys``, and never trusted for manifests."""

from __future__ import annotations

import pytest
from vo2dr.exceptions import ConfigError
from vo2dr.signing import generate_signing_key

from dev.mockrun import TEST_RECORD_PUBLIC_KEYS, TEST_SIGNING_PUBLIC_KEYS, stack_config


def test_record_public_keys_are_plain_config_beside_the_manifest_keys():
    cfg = stack_config("production", {"vo2max-dr:signingPublicKeys": TEST_SIGNING_PUBLIC_KEYS,
                                      "vo2max-dr:recordPublicKeys": TEST_RECORD_PUBLIC_KEYS})
    assert cfg.record_public_keys == TEST_RECORD_PUBLIC_KEYS
    assert cfg.signing_public_keys == TEST_SIGNING_PUBLIC_KEYS


def test_unset_until_the_first_deploy():
    assert stack_config("staging", {"vo2max-dr:recordPublicKeys": None}).record_public_keys \
        is None


def test_a_record_key_also_trusted_for_manifests_is_refused():
    shared = TEST_SIGNING_PUBLIC_KEYS.split("-----END PUBLIC KEY-----")[0] + \
        "-----END PUBLIC KEY-----\n"
    with pytest.raises(ConfigError, match=r"recordPublicKeys shares 1 key\(s\) with "
                                          "signingPublicKeys"):
        stack_config("staging", {"vo2max-dr:signingPublicKeys": TEST_SIGNING_PUBLIC_KEYS,
                                 "vo2max-dr:recordPublicKeys":
                                     TEST_RECORD_PUBLIC_KEYS + shared})


@pytest.mark.parametrize("value, expect", [
    ("not a key", "recordPublicKeys is not usable"),
    (generate_signing_key()[0].decode(), "never put a private key in config"),
])
def test_bad_record_public_keys_say_what_and_how(value, expect):
    with pytest.raises(ConfigError, match=expect) as err:
        stack_config("staging", {"vo2max-dr:recordPublicKeys": value})
    assert "awsRecordSigningKeyArn" in str(err.value)
