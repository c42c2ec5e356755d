"""ocibuild-gcp: Google Cloud for ocibuild.

Installed next to ocibuild, it adds the deployers ``gcpjob`` (a Vertex AI CustomJob) and
``gcpserving`` (a model on a Vertex AI Endpoint), the context store ``gcs``, the pod spec
mutator ``gcp_service_account``, and credentials for Artifact Registry and Container Registry
hosts, all found through ocibuild's plugin entry points. Credentials are Google's Application
Default Credentials, read without google-auth. The classes load on first use.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ._auth import (
        GoogleCredentials,
        application_default_credentials,
        default_project,
        default_region,
        find_credentials,
        load_credentials_file,
    )
    from ._customjob import GcpJob, GcpJobRun
    from ._errors import GcpAuthError, GoogleApiError, VertexJobFailedError
    from ._gcs import GcsContextStore
    from ._mutators import gcp_service_account
    from ._serving import GcpServing, GcpServingRun

__version__ = "0.1.0"

_WHERE = {
    "GoogleCredentials": "._auth",
    "application_default_credentials": "._auth",
    "default_project": "._auth",
    "default_region": "._auth",
    "find_credentials": "._auth",
    "load_credentials_file": "._auth",
    "GcpJob": "._customjob",
    "GcpJobRun": "._customjob",
    "GcpAuthError": "._errors",
    "GoogleApiError": "._errors",
    "VertexJobFailedError": "._errors",
    "GcsContextStore": "._gcs",
    "gcp_service_account": "._mutators",
    "GcpServing": "._serving",
    "GcpServingRun": "._serving",
}

__all__ = [
    "GcpAuthError",
    "GcpJob",
    "GcpJobRun",
    "GcpServing",
    "GcpServingRun",
    "GcsContextStore",
    "GoogleApiError",
    "GoogleCredentials",
    "VertexJobFailedError",
    "__version__",
    "application_default_credentials",
    "default_project",
    "default_region",
    "find_credentials",
    "gcp_service_account",
    "load_credentials_file",
]


def __getattr__(name: str) -> Any:
    where = _WHERE.get(name)
    if where is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(where, __name__), name)
    globals()[name] = value
    return value
