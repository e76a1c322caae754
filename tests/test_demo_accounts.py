"""The demo's random passwords always satisfy the password policy (issue 14)."""

from __future__ import annotations

import pytest

from monitor import demo


def test_a_random_password_that_contains_the_username_is_drawn_again(monkeypatch: pytest.MonkeyPatch) -> None:
    # token_urlsafe(9) is 12 characters of [A-Za-z0-9_-]: "qa" (in either case) turns up in about one
    # draw in a hundred, and the demo then failed to start ("must not contain the username").
    draws = iter(["Zx7qA-k2Lm9P", "Zx7Tb-k2Lm9P"])
    monkeypatch.setattr(demo.secrets, "token_urlsafe", lambda _n: next(draws))

    assert demo._random_password("qa") == "Zx7Tb-k2Lm9P"
