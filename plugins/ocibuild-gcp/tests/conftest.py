"""Every test runs with no Google credentials or project of the machine's: the gcloud config
directory is empty, and the metadata server is a closed loopback port (refused at once), so
nothing reaches Google and nothing waits on it."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

_GOOGLE_ENV = (
    "GOOGLE_APPLICATION_CREDENTIALS",
    "GOOGLE_CLOUD_PROJECT",
    "GCLOUD_PROJECT",
    "CLOUDSDK_CORE_PROJECT",
    "GOOGLE_CLOUD_REGION",
    "CLOUDSDK_COMPUTE_REGION",
    "CLOUD_ML_REGION",
    "GCE_METADATA_ROOT",
    "GCE_METADATA_IP",
    "NO_GCE_CHECK",
    "STORAGE_EMULATOR_HOST",
)


@pytest.fixture(autouse=True)
def no_google_of_the_machine(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[None]:
    for name in _GOOGLE_ENV:
        monkeypatch.delenv(name, raising=False)
    gcloud = tmp_path / "gcloud-config"
    gcloud.mkdir()
    monkeypatch.setenv("CLOUDSDK_CONFIG", str(gcloud))
    monkeypatch.setenv("GCE_METADATA_HOST", "127.0.0.1:1")
    yield


# The fixtures of each part of the plugin: credentials and the token endpoint, Vertex AI,
# Cloud Storage; and a registry on loopback for the end-to-end tests.
pytest_plugins = [
    "tests.fixtures_auth",
    "tests.fixtures_vertex",
    "tests.fixtures_gcs",
    "tests.fixtures_registry",
]
