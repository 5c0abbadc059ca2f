"""The test suite's manifest signing keys: local P-256 keys standing in for the KMS signing
keys (the job's, and the standby's Cloud KMS key), both trusted; and an untrusted one, the
attacker's."""

from vo2dr.signing import generate_signing_key

PRIVATE, PUBLIC = generate_signing_key()
STANDBY_PRIVATE, STANDBY_PUBLIC = generate_signing_key()
FOREIGN_PRIVATE, FOREIGN_PUBLIC = generate_signing_key()

TRUSTED = (PUBLIC + STANDBY_PUBLIC).decode()
SETTINGS = {"signing_key": PRIVATE.decode(), "signing_public_keys": TRUSTED}
ENV = {"VO2DR_SIGNING_KEY": PRIVATE.decode(), "VO2DR_SIGNING_PUBLIC_KEYS": TRUSTED}
