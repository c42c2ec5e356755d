"""The executor's push credentials: a ``kubernetes.io/dockerconfigjson`` secret for the
destination registry only, from ocibuild's own credential sources.

The document is the deployers' pull secret (:func:`..deployers._workload.pull_secret`), whose
``config.json`` Kaniko reads from ``/kaniko/.docker`` and BuildKit from ``DOCKER_CONFIG``.
Nothing here logs the credentials; the secret is deleted with the Job (it is owned by it) and
again explicitly once the build is done. An anonymous registry gets no secret.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from ...oci import Reference
from .._errors import PipelineError

if TYPE_CHECKING:
    from ...transports.registry import RegistryOptions
    from ..deployers import Job

__all__ = ["create_push_secret", "delete_push_secret"]

_log = logging.getLogger("ocibuild.builders")


def create_push_secret(job: Job, destination: str, options: RegistryOptions | None) -> str | None:
    """Create the secret in the Job's namespace; its name (None: no credentials known)."""
    from ...transports.registry import RegistryOptions, find_credential
    from ..deployers._workload import SECRET, pull_secret, random_name

    assert job.namespace is not None
    reference = Reference.parse(destination)
    found = find_credential(reference.registry, reference.repository, options or RegistryOptions())
    if found.is_anonymous:
        _log.info("no credentials for %s: the executor pushes without", reference.registry)
        return None
    if found.username is None or found.password is None:
        raise PipelineError(
            f"the executor pushes to {reference.registry} with a user name and password, and "
            f"ocibuild has a token from {found.source}: run 'ocibuild login "
            f"{reference.registry}' with a user name and password"
        )
    name = random_name("ocibuild-push-")
    body = pull_secret(
        name, job.namespace, destination, job.labels, credentials=True, options=options
    )
    SECRET.create(job.access, job.namespace, body)
    return name


def delete_push_secret(job: Job, name: str) -> None:
    """Delete the secret; gone already (with its Job) is fine."""
    from ..deployers._workload import SECRET

    assert job.namespace is not None
    SECRET.delete(job.access, job.namespace, name, "Background")
