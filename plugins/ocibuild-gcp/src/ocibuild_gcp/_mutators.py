"""The pod spec mutator ``gcp_service_account``: a Google service account for every container.

It is ocibuild's :func:`ocibuild.kubernetes.utils.gcp_credentials` (the key secret mounted at
``/etc/secrets``, ``GOOGLE_APPLICATION_CREDENTIALS`` naming the key) plus the project:
``GOOGLE_CLOUD_PROJECT``, the first place Google's libraries look for it, so code in the pod
that asks for "the default project" finds the one the job was meant for.
"""

from __future__ import annotations

import logging

from ocibuild import InvalidOptionError
from ocibuild.kubernetes.utils import gcp_credentials
from ocibuild.pipeline import PodSpec, PodSpecMutator

__all__ = ["PROJECT_ENV", "gcp_service_account"]

PROJECT_ENV = "GOOGLE_CLOUD_PROJECT"

log = logging.getLogger(__name__)


def gcp_service_account(
    secret_name: str = "user-gcp-sa",
    *,
    key: str | None = None,
    project: str | None = None,
    optional: bool = False,
) -> PodSpecMutator:
    """A mutator giving every container the service account key in the secret
    ``secret_name`` (under ``key``, default ``SECRET_NAME.json``) and ``GOOGLE_CLOUD_PROJECT``.

    ``project``: set in every container, replacing any value there. Not given: the project
    of this machine's Google configuration (``GOOGLE_CLOUD_PROJECT``, the credentials, gcloud's
    config), looked up when the mutator first runs and set only in containers that have no
    ``GOOGLE_CLOUD_PROJECT`` yet; when none is known, the variable is left out. ``optional``:
    a missing secret does not keep the pod from starting (see ``gcp_credentials``).
    Applying the mutator twice changes nothing the second time.
    """
    if project is not None and (not isinstance(project, str) or not project.strip()):
        raise InvalidOptionError(f"gcp_service_account: project {project!r} is not a project id")
    credentials = gcp_credentials(secret_name, key=key, optional=optional)
    found: list[str | None] = []  # the default project, once looked up

    def mutate(pod_spec: PodSpec, namespace: str | None) -> None:
        credentials(pod_spec, namespace)
        value = project
        if value is None:
            if not found:
                found.append(_default_project())
            value = found[0]
        if value is not None:
            _set_project(pod_spec, value, replace=project is not None)

    args = [repr(secret_name)] if secret_name != "user-gcp-sa" else []
    args += [f"{k}={v!r}" for k, v in (("key", key), ("project", project)) if v is not None]
    args += ["optional=True"] if optional else []
    mutate.__name__ = mutate.__qualname__ = f"gcp_service_account({', '.join(args)})"
    return mutate


def _default_project() -> str | None:
    from ._auth import default_project
    from ._errors import GcpAuthError

    try:
        return default_project()
    except GcpAuthError as err:
        # This machine's credentials are not the pod's: a broken local key file only costs
        # the pod its project hint, not the deploy.
        log.warning("gcp_service_account: no default project (%s)", err)
        return None


def _set_project(pod_spec: PodSpec, value: str, *, replace: bool) -> None:
    for container in pod_spec.get("containers") or []:
        env = container.setdefault("env", [])
        for entry in env:
            if entry.get("name") == PROJECT_ENV:
                if replace:  # in place, so the variables keep their order
                    entry.pop("valueFrom", None)
                    entry["value"] = value
                break
        else:
            env.append({"name": PROJECT_ENV, "value": value})
