"""Cloud credentials from a Kubernetes secret, laid out as Fairing (and Kubeflow) had them.

- GCP: the secret ``user-gcp-sa`` (a service account key under ``user-gcp-sa.json``) mounted
  at ``/etc/secrets``, and ``GOOGLE_APPLICATION_CREDENTIALS`` naming the key file.
- AWS: ``AWS_ACCESS_KEY_ID`` and ``AWS_SECRET_ACCESS_KEY`` from the keys of those names in the
  secret ``aws-secret``.
- Azure: ``AZ_CLIENT_ID``, ``AZ_CLIENT_SECRET``, ``AZ_TENANT_ID``, ``AZ_SUBSCRIPTION_ID`` from
  the keys of those names in the secret ``azcreds`` (Fairing's Azure backend read them there),
  and the same values as ``AZURE_*``, the names Azure's SDKs read.

Fairing's ``..._if_exists`` mutators asked the API server whether the secret exists. Here
"if it exists" is Kubernetes' own ``optional: true`` on the secret volume and on each
``secretKeyRef``: the kubelet starts the pod without what is missing, and no API call is
needed. One difference: with GCP's secret missing, ``GOOGLE_APPLICATION_CREDENTIALS`` still
names the (absent) key file, so google-auth fails instead of trying the metadata server;
Fairing fell back to the ``default-editor`` service account (workload identity) there. On
workload identity, add no GCP credentials.

The factories (``gcp_credentials(...)``) make mutators; Fairing's names
(``add_gcp_credentials``, ...) are mutators themselves, as Fairing's were, so ported code
passes them uncalled.
"""

from __future__ import annotations

import posixpath

from .._protocols import PodSpec, PodSpecMutator
from ._mutator_helpers import env_from_secret, mount_secret, named
from ._pod_spec import containers_of, set_env

__all__ = [
    "AWS_SECRET",
    "AZURE_SECRET",
    "GCP_SECRET",
    "GCP_SECRETS_DIR",
    "add_aws_credentials",
    "add_aws_credentials_if_exists",
    "add_azure_credentials",
    "add_azure_credentials_if_exists",
    "add_gcp_credentials",
    "add_gcp_credentials_if_exists",
    "aws_credentials",
    "azure_credentials",
    "gcp_credentials",
]

GCP_SECRET = "user-gcp-sa"
GCP_SECRETS_DIR = "/etc/secrets"
AWS_SECRET = "aws-secret"
AWS_KEYS = ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY")
AZURE_SECRET = "azcreds"
AZURE_KEYS = ("AZ_CLIENT_ID", "AZ_CLIENT_SECRET", "AZ_TENANT_ID", "AZ_SUBSCRIPTION_ID")


def _label(name: str, secret_name: str, default: str, optional: bool) -> str:
    args = [repr(secret_name)] if secret_name != default else []
    return f"{name}({', '.join([*args, *(['optional=True'] if optional else [])])})"


def gcp_credentials(
    secret_name: str = GCP_SECRET, *, key: str | None = None, optional: bool = False
) -> PodSpecMutator:
    """A GCP service account key for every container: the secret mounted read-only at
    ``/etc/secrets``, ``GOOGLE_APPLICATION_CREDENTIALS`` naming its ``key`` there (default
    ``SECRET_NAME.json``). ``optional=True``: Fairing's ``..._if_exists`` (see the module)."""
    mount = mount_secret(secret_name, GCP_SECRETS_DIR, optional=optional)
    path = posixpath.join(GCP_SECRETS_DIR, key or f"{secret_name}.json")

    def mutate(pod_spec: PodSpec, namespace: str | None) -> None:
        mount(pod_spec, namespace)
        for container in containers_of(pod_spec):
            set_env(container, {"name": "GOOGLE_APPLICATION_CREDENTIALS", "value": path})

    return named(_label("gcp_credentials", secret_name, GCP_SECRET, optional), mutate)


def aws_credentials(secret_name: str = AWS_SECRET, *, optional: bool = False) -> PodSpecMutator:
    """AWS access keys for every container: ``AWS_ACCESS_KEY_ID`` and
    ``AWS_SECRET_ACCESS_KEY`` from those keys of the secret. ``optional=True``: Fairing's
    ``..._if_exists`` (see the module)."""
    env = env_from_secret(secret_name, AWS_KEYS, optional=optional)
    return named(_label("aws_credentials", secret_name, AWS_SECRET, optional), env)


def azure_credentials(secret_name: str = AZURE_SECRET, *, optional: bool = False) -> PodSpecMutator:
    """An Azure service principal for every container: ``AZ_CLIENT_ID``, ``AZ_CLIENT_SECRET``,
    ``AZ_TENANT_ID``, ``AZ_SUBSCRIPTION_ID`` from those keys of the secret, and each again as
    ``AZURE_...`` (what azure-identity's ``EnvironmentCredential`` reads). ``optional=True``:
    Fairing's ``..._if_exists`` (see the module)."""
    keys = {name: name for name in AZURE_KEYS}
    keys.update({name.replace("AZ_", "AZURE_", 1): name for name in AZURE_KEYS})
    env = env_from_secret(secret_name, keys, optional=optional)
    return named(_label("azure_credentials", secret_name, AZURE_SECRET, optional), env)


# -- Fairing's names: mutators themselves ------------------------------------------------


def add_gcp_credentials(pod_spec: PodSpec, namespace: str | None) -> None:
    """Fairing's mutator: :func:`gcp_credentials` from the secret ``user-gcp-sa``."""
    gcp_credentials()(pod_spec, namespace)


def add_gcp_credentials_if_exists(pod_spec: PodSpec, namespace: str | None) -> None:
    """Fairing's mutator: :func:`gcp_credentials` from ``user-gcp-sa`` if it exists (see the
    module for how, and for what differs on workload identity)."""
    gcp_credentials(optional=True)(pod_spec, namespace)


def add_aws_credentials(pod_spec: PodSpec, namespace: str | None) -> None:
    """Fairing's mutator: :func:`aws_credentials` from the secret ``aws-secret``."""
    aws_credentials()(pod_spec, namespace)


def add_aws_credentials_if_exists(pod_spec: PodSpec, namespace: str | None) -> None:
    """Fairing's mutator: :func:`aws_credentials` from ``aws-secret`` if it exists."""
    aws_credentials(optional=True)(pod_spec, namespace)


def add_azure_credentials(pod_spec: PodSpec, namespace: str | None) -> None:
    """:func:`azure_credentials` from the secret ``azcreds``, named like Fairing's GCP and
    AWS mutators (Fairing itself had none for Azure)."""
    azure_credentials()(pod_spec, namespace)


def add_azure_credentials_if_exists(pod_spec: PodSpec, namespace: str | None) -> None:
    """:func:`azure_credentials` from ``azcreds`` if it exists."""
    azure_credentials(optional=True)(pod_spec, namespace)
