"""Pod spec mutators: edits the Kubernetes deployers apply to the pod spec before they run it.

Code ported from Fairing keeps its imports with ``kubeflow.fairing`` replaced by
``ocibuild``::

    from ocibuild.kubernetes.utils import get_resource_mutator, mounting_pvc

    job = Job(pod_spec_mutators=[get_resource_mutator(cpu=2, memory=8), mounting_pvc("data")])

A mutator is ``mutate(pod_spec, namespace)`` on the PodSpec dict, or Fairing's
``mutate(backend, pod_spec, namespace)`` on a ``kubernetes.client.V1PodSpec``
(:func:`apply_pod_spec_mutators` tells them apart). Each helper here returns one that edits
every container of the pod and copes with a partly filled spec. Fairing's credential
mutators are in :mod:`ocibuild.cloud.gcp`, :mod:`ocibuild.cloud.aws` and
:mod:`ocibuild.cloud.azure`. Importing this module does not import the ``kubernetes`` client.
"""

from .._public import publish
from ..pipeline.deployers._credentials import aws_credentials, azure_credentials, gcp_credentials
from ..pipeline.deployers._mutator_helpers import (
    add_env,
    add_tolerations,
    env_from_config_map,
    env_from_secret,
    get_node_selector,
    get_resource_mutator,
    image_pull_secrets,
    mount_config_map,
    mount_secret,
    mounting_pvc,
    node_selector,
    volume_mounts,
)
from ..pipeline.deployers._mutators import apply_pod_spec_mutators, mutator_shape

__all__ = [
    "add_env",
    "add_tolerations",
    "apply_pod_spec_mutators",
    "aws_credentials",
    "azure_credentials",
    "env_from_config_map",
    "env_from_secret",
    "gcp_credentials",
    "get_node_selector",
    "get_resource_mutator",
    "image_pull_secrets",
    "mount_config_map",
    "mount_secret",
    "mounting_pvc",
    "mutator_shape",
    "node_selector",
    "volume_mounts",
]

publish(__name__, globals(), __all__)
