"""Fixtures: Cloud Storage.

``gcs`` is the JSON API emulator (:class:`~tests.emulators._gcs.GcsEmulator`) on loopback with
the bucket ``ocibuild-test``, accepting the tokens of the ``adc`` fixture's token server;
``gcs_anonymous`` is one that asks for no credentials, at ``$STORAGE_EMULATOR_HOST``, as
Google's libraries find an emulator.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.emulators._gcs import GcsEmulator
from tests.emulators._server import serving
from tests.fixtures_auth import ADC

__all__ = ["TEST_BUCKET", "gcs", "gcs_anonymous"]

TEST_BUCKET = "ocibuild-test"


@pytest.fixture
def gcs(adc: ADC) -> Iterator[GcsEmulator]:
    """Cloud Storage with the bucket ``ocibuild-test``, for the ``adc`` credentials."""
    emulator = GcsEmulator(adc.token_server.valid)
    emulator.buckets.add(TEST_BUCKET)
    with serving(emulator):
        yield emulator


@pytest.fixture
def gcs_anonymous(monkeypatch: pytest.MonkeyPatch) -> Iterator[GcsEmulator]:
    """Cloud Storage without credentials, named by ``$STORAGE_EMULATOR_HOST`` (no scheme)."""
    emulator = GcsEmulator(None)
    emulator.buckets.add(TEST_BUCKET)
    with serving(emulator):
        monkeypatch.setenv("STORAGE_EMULATOR_HOST", emulator.host)
        yield emulator
