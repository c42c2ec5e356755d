"""Fixtures: Vertex AI and Cloud Logging.

``vertex`` is the emulator of both (:class:`~tests.emulators._vertex.VertexEmulator`) running
on loopback, accepting the tokens of the ``adc`` fixture's token server (so
``GOOGLE_APPLICATION_CREDENTIALS`` and ``GOOGLE_CLOUD_PROJECT=test-project`` are set), with
``GOOGLE_CLOUD_REGION=us-central1`` set too. Point a deployer at it with its ``url``::

    GcpJob(api_endpoint=vertex.url, logging_endpoint=vertex.url, poll_interval=0.01)
    GcpJob(**vertex.options)                       # the same three options
    ["ocibuild", "run", "train.py", "--deployer", "gcpjob", *vertex.cli_options]

``vertex.job_outcome = "failed"`` (or a job label ``emulator-outcome: failed``) makes the
next jobs fail, ``"running"`` keeps them running; ``vertex.serving_outcome = "failed"`` makes
deployModel fail; ``vertex.jobs``/``models``/``endpoints`` are what exists;
``vertex.received(method, path_regex)`` the requests that came; ``vertex.fail(status, ...)``
and ``vertex.expire_token()`` inject failures.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.emulators._server import serving
from tests.emulators._vertex import LOCATION, VertexEmulator
from tests.fixtures_auth import ADC

__all__ = ["TEST_REGION", "vertex"]

TEST_REGION = LOCATION


@pytest.fixture
def vertex(adc: ADC, monkeypatch: pytest.MonkeyPatch) -> Iterator[VertexEmulator]:
    """Vertex AI and Cloud Logging on loopback, for the ``adc`` credentials, in
    ``us-central1`` (``$GOOGLE_CLOUD_REGION``)."""
    monkeypatch.setenv("GOOGLE_CLOUD_REGION", TEST_REGION)
    emulator = VertexEmulator(adc.token_server.valid, project=adc.project)
    with serving(emulator):
        yield emulator
