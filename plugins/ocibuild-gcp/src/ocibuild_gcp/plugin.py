"""The hooks ocibuild calls: this module is the plugin (entry point ``gcp`` in the group
``ocibuild``). Each hook imports what it names only when it is called, so loading ocibuild's
plugin manager stays fast with this plugin installed."""

from __future__ import annotations

from collections.abc import Mapping

from ocibuild.hookspecs import (
    ContextStoreFactory,
    CredentialSource,
    DeployerFactory,
    PodSpecMutatorFactory,
    hookimpl,
)

__all__ = [
    "ocibuild_context_stores",
    "ocibuild_credential_sources",
    "ocibuild_deployers",
    "ocibuild_pod_spec_mutators",
]


@hookimpl
def ocibuild_deployers() -> Mapping[str, DeployerFactory]:
    """``gcpjob`` (a Vertex AI CustomJob) and ``gcpserving`` (a Vertex AI Endpoint)."""
    from ._customjob import GcpJob
    from ._serving import GcpServing

    return {"gcpjob": GcpJob, "gcpserving": GcpServing}


@hookimpl
def ocibuild_context_stores() -> Mapping[str, ContextStoreFactory]:
    """``gcs``: build contexts in a Cloud Storage bucket."""
    from ._gcs import GcsContextStore

    return {"gcs": GcsContextStore}


@hookimpl
def ocibuild_pod_spec_mutators() -> Mapping[str, PodSpecMutatorFactory]:
    """``gcp_service_account``: a service-account key secret for every container."""
    from ._mutators import gcp_service_account

    return {"gcp_service_account": gcp_service_account}


@hookimpl
def ocibuild_credential_sources() -> Mapping[str, CredentialSource]:
    """``google``: Artifact Registry and Container Registry hosts, from Google credentials."""
    from ._registry import google_registry_credential

    return {"google": google_registry_credential}
