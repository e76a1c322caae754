"""The ingest tests' fixtures (a model, an ingest key, a client whose ingest group commits in the test's session)."""

from tests.ingest.conftest import client, ich, ingest_key  # noqa: F401
