"""The password policy: long enough, not the username, not a common password.

The common-password list is Django's (BSD licence): 19,640 passwords from Royce Williams's
compilation of breach corpora, lowercased and deduplicated, shipped gzipped as package data."""

from __future__ import annotations

import gzip
from functools import cache
from importlib import resources

from monitor.errors import Invalid

MIN_LENGTH = 12
# argon2 hashes any length, but a megabyte password would be a cheap way to burn server CPU.
MAX_LENGTH = 1024
MIN_DISTINCT_CHARACTERS = 5


@cache
def common_passwords() -> frozenset[str]:
    """The shipped list, lowercased (read once per process)."""
    data = resources.files("monitor.auth").joinpath("common-passwords.txt.gz").read_bytes()
    return frozenset(line.strip() for line in gzip.decompress(data).decode("utf-8").splitlines() if line.strip())


def check_password(*, username: str, password: str) -> None:
    """Raise Invalid, saying which rule failed, unless the password meets the policy."""
    if len(password) < MIN_LENGTH:
        raise Invalid(f"the password must be at least {MIN_LENGTH} characters (it has {len(password)})")
    if len(password) > MAX_LENGTH:
        raise Invalid(f"the password must be at most {MAX_LENGTH} characters")
    folded = password.casefold()
    if username and username.casefold() in folded:
        raise Invalid("the password must not contain the username")
    if len(set(folded)) < MIN_DISTINCT_CHARACTERS:
        raise Invalid(f"the password must use at least {MIN_DISTINCT_CHARACTERS} different characters")
    if folded in common_passwords() or folded.strip() in common_passwords():
        raise Invalid("the password is on the list of common passwords; choose another")
