"""Real test infrastructure: registries, a token server, a fault proxy, validators, base images,
a Kubernetes control plane with kwok nodes, Kubeflow's controllers and a KServe stand-in.

The fixtures in ``tests/conftest.py`` are thin wrappers around what is exported here.
"""

from ._faultproxy import Fault, FaultProxy, Hold
from ._http1 import LoggedRequest
from ._images import (
    BUSYBOX_APPLETS,
    HELLO_OUTPUT,
    BaseImage,
    BaseInRegistry,
    DockerArchive,
    make_base_in_registry,
    make_base_layout,
    make_busybox_rootfs,
    make_docker_archive,
)
from ._kube import KUBE_BIN_ENV, KubeCluster, find_kube_bin, start_kube_cluster, wait_for
from ._kube_stages import CRASH_RESTART_SECONDS, SCENARIO_LABEL, SLOW_SECONDS, Scenario
from ._kubeflow import (
    KUBEFLOW_DIR_ENV,
    TRAINING_OPERATOR_NAMESPACE,
    KubeflowStack,
    find_kubeflow_dir,
    install_kubeflow,
)
from ._moto import MotoServer, start_moto_server
from ._operators import INFERENCE_SERVICE, KSERVE_CONTAINER, KServeStandIn
from ._registry import BasicCredentials, Registry, new_credentials, start_registry
from ._schema import LayoutSummary, OCISchema, SchemaViolation
from ._tls import TLSFiles, make_tls_files
from ._tokenserver import TokenRequest, TokenServer, TokenSettings
from ._tools import (
    MissingToolError,
    ToolError,
    require,
    run,
    skopeo_copy,
    skopeo_inspect,
    umoci_unpack,
)

__all__ = [
    "BUSYBOX_APPLETS",
    "CRASH_RESTART_SECONDS",
    "HELLO_OUTPUT",
    "Hold",
    "INFERENCE_SERVICE",
    "KSERVE_CONTAINER",
    "KUBEFLOW_DIR_ENV",
    "KUBE_BIN_ENV",
    "SCENARIO_LABEL",
    "SLOW_SECONDS",
    "TRAINING_OPERATOR_NAMESPACE",
    "BaseImage",
    "BaseInRegistry",
    "BasicCredentials",
    "DockerArchive",
    "Fault",
    "FaultProxy",
    "KServeStandIn",
    "KubeCluster",
    "KubeflowStack",
    "LayoutSummary",
    "LoggedRequest",
    "MissingToolError",
    "MotoServer",
    "OCISchema",
    "Registry",
    "Scenario",
    "SchemaViolation",
    "TLSFiles",
    "TokenRequest",
    "TokenServer",
    "TokenSettings",
    "ToolError",
    "find_kube_bin",
    "find_kubeflow_dir",
    "install_kubeflow",
    "make_base_in_registry",
    "make_base_layout",
    "make_busybox_rootfs",
    "make_docker_archive",
    "make_tls_files",
    "new_credentials",
    "require",
    "run",
    "skopeo_copy",
    "skopeo_inspect",
    "start_kube_cluster",
    "start_moto_server",
    "start_registry",
    "umoci_unpack",
    "wait_for",
]
