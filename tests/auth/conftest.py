"""The dashboard client fixture, for the sign-in and session tests of this folder."""

from tests.dashboard.conftest import dashboard_client  # noqa: F401
