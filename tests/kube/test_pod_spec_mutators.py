"""What the pod spec mutators make is a pod spec the real API server takes, as it is."""

from __future__ import annotations

from typing import Any, cast

import pytest
from kubernetes import client

from ocibuild.cloud import aws, azure, gcp
from ocibuild.kubernetes import utils
from ocibuild.pipeline import PodSpec
from tests.support import wait_for

pytestmark = pytest.mark.xdist_group("kube")


def _create_job(
    api: client.ApiClient, namespace: str, name: str, spec: PodSpec, *, dry_run: bool = False
) -> Any:
    """The Job as the API server stored it (validated, defaulted)."""
    body: Any = {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {"name": name},
        "spec": {"backoffLimit": 0, "template": {"spec": {**spec, "restartPolicy": "Never"}}},
    }
    batch = client.BatchV1Api(api)
    job = batch.create_namespaced_job(namespace, body, dry_run="All" if dry_run else None)
    return _json(api, job)


def _json(api: client.ApiClient, obj: object) -> Any:
    return api.sanitize_for_serialization(obj)  # type: ignore[no-untyped-call]


def _pod_of(api: client.ApiClient, namespace: str, job_name: str) -> Any:
    def pod() -> Any:
        pods = client.CoreV1Api(api).list_namespaced_pod(
            namespace, label_selector=f"batch.kubernetes.io/job-name={job_name}"
        )
        items = _json(api, pods)["items"]
        return items[0] if items else None

    return wait_for(pod, 30.0, f"a pod of Job {job_name}")


def _spec() -> PodSpec:
    partly_filled: Any = {
        "containers": [
            {"name": "main", "image": "example.invalid/train:1", "env": None},
            {"name": "sidecar", "image": "example.invalid/side:1", "resources": None},
        ]
    }
    return cast("PodSpec", partly_filled)


def fairing_style(kube_manager: Any, pod_spec: Any, namespace: Any) -> None:
    pod_spec.containers[0].env = [client.V1EnvVar(name="FROM_FAIRING", value="1")]


def test_every_helper_makes_a_spec_the_api_server_takes(
    kube_client: client.ApiClient, kube_namespace: str
) -> None:
    mutators: list[Any] = [
        utils.get_resource_mutator(cpu=0.5, memory=2, gpu=1),
        utils.mounting_pvc("data"),
        utils.volume_mounts("secret", "tokens", "/etc/tokens"),
        utils.mount_secret("tls.example.com", "/tls", items={"tls.crt": "cert.pem"}),
        utils.mount_config_map("cfg", "/etc/cfg", optional=True),
        utils.env_from_secret("db", {"DB_PASSWORD": "password"}, optional=True),
        utils.env_from_config_map("flags"),
        fairing_style,
        utils.add_env({"EPOCHS": 3}),
        utils.node_selector({"pool": "gpu"}),
        utils.add_tolerations({"key": "gpu", "operator": "Exists", "effect": "NoSchedule"}),
        utils.image_pull_secrets("regcred"),
        gcp.add_gcp_credentials_if_exists,
        aws.add_aws_credentials,
        azure.add_azure_credentials_if_exists,
    ]
    spec = utils.apply_pod_spec_mutators(mutators, _spec(), kube_namespace)
    job = _create_job(kube_client, kube_namespace, "mutated", spec)
    stored = job["spec"]["template"]["spec"]
    ours = cast("dict[str, Any]", spec)
    assert [v["name"] for v in stored["volumes"]] == [v["name"] for v in ours["volumes"]]
    main, sidecar = stored["containers"]
    assert main["env"] == ours["containers"][0]["env"]
    assert main["env"][0] == {"name": "FROM_FAIRING", "value": "1"}
    for container in (main, sidecar):
        # As the API server writes 0.5 CPUs, and 2 GB made 1.86Gi as Fairing made it.
        assert ours["containers"][0]["resources"]["limits"]["memory"] == "1.86Gi"
        assert container["resources"]["limits"] == {
            "cpu": "500m",
            "memory": "1997159792640m",
            "nvidia.com/gpu": "1",
        }
        assert "requests" not in container["resources"]
        assert len(container["volumeMounts"]) == 5
    assert stored["nodeSelector"] == {"pool": "gpu"}
    # A pod requests what its limits say: the resource mutator needs to set no requests.
    pod = _pod_of(kube_client, kube_namespace, "mutated")
    for container in pod["spec"]["containers"]:
        assert container["resources"]["requests"] == container["resources"]["limits"]


def test_the_api_server_refuses_what_the_helpers_avoid(
    kube_client: client.ApiClient, kube_namespace: str
) -> None:
    # A secret's name may hold dots; a volume's may not, so mount_secret derives one.
    spec = _spec()
    spec["volumes"] = [{"name": "tls.example.com", "secret": {"secretName": "tls.example.com"}}]
    with pytest.raises(client.ApiException) as caught:
        _create_job(kube_client, kube_namespace, "dotted", spec, dry_run=True)
    assert caught.value.status == 422
    assert "tls.example.com" in str(caught.value.body)
