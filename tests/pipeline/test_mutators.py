"""Applying pod spec mutators: both call shapes (Fairing's on a real V1PodSpec), order, errors
that name the mutator, the public homes, and the names registered through the plugin hook."""

from __future__ import annotations

import copy
import functools
import subprocess
import sys
from typing import Any, cast

import pytest
from kubernetes import client

from ocibuild import DeployError, PipelineError
from ocibuild.cloud import aws, azure, gcp
from ocibuild.kubernetes import utils
from ocibuild.kubernetes.utils import apply_pod_spec_mutators, mutator_shape
from ocibuild.pipeline import PodSpec
from ocibuild.pipeline._plugins import names, resolve_pod_spec_mutators
from ocibuild.pipeline._run import create
from tests.pipeline._pod_specs import apply, secret_refs, two_containers

# -- applying: order, shapes, errors -----------------------------------------------------


def test_mutators_run_in_order_on_the_spec_given() -> None:
    seen: list[str] = []

    def first(pod_spec: PodSpec, namespace: str | None) -> None:
        seen.append(f"first in {namespace}")
        pod_spec["serviceAccountName"] = "first"

    def second(pod_spec: PodSpec, namespace: str | None) -> None:
        seen.append(f"second saw {pod_spec['serviceAccountName']}")
        pod_spec["serviceAccountName"] = "second"

    spec = two_containers()
    assert apply_pod_spec_mutators([first, second], spec, "team") is spec
    assert seen == ["first in team", "second saw first"]
    assert spec["serviceAccountName"] == "second"


class _Backend:
    """What a deployer passes to Fairing's mutators: Fairing's KubeManager.secret_exists."""

    def __init__(self, *secrets: str) -> None:
        self.secrets = set(secrets)
        self.asked: list[tuple[str, str]] = []

    def secret_exists(self, name: str, namespace: str) -> bool:
        self.asked.append((name, namespace))
        return name in self.secrets


def fairing_gpu_if_secret(kube_manager: Any, pod_spec: Any, namespace: Any) -> None:
    """A mutator as Fairing users wrote them: on the client's models, containers[0] only."""
    assert isinstance(pod_spec, client.V1PodSpec)
    env = pod_spec.containers[0].env
    if kube_manager.secret_exists("license", namespace) and env is not None:
        env.append(client.V1EnvVar(name="LICENSE", value_from=client.V1EnvVarSource(
            secret_key_ref=client.V1SecretKeySelector(name="license", key="key"))))  # fmt: skip
    pod_spec.containers[0].resources = client.V1ResourceRequirements(limits={"nvidia.com/gpu": "2"})
    pod_spec.node_selector = {"accelerator": "a100"}


def test_fairing_shape_gets_a_v1podspec_and_the_backend() -> None:
    backend = _Backend("license")
    spec = two_containers()
    spec["containers"][1]["resources"] = {"limits": {"memory": "1Gi", "nvidia.com/gpu": 1}}
    cast("dict[str, Any]", spec)["schedulingFuture"] = {"kept": True}  # unknown to the client
    out = cast(
        "dict[str, Any]",
        apply_pod_spec_mutators([fairing_gpu_if_secret], spec, "team", backend=backend),
    )
    assert backend.asked == [("license", "team")]
    main, sidecar = out["containers"]
    assert main["env"] == [
        {"name": "PYTHONUNBUFFERED", "value": "1"},
        {"name": "LICENSE", "valueFrom": {"secretKeyRef": {"name": "license", "key": "key"}}},
    ]
    assert main["resources"] == {"limits": {"nvidia.com/gpu": "2"}}
    assert main["command"] == ["python", "train.py"]
    assert sidecar["resources"] == {"limits": {"memory": "1Gi", "nvidia.com/gpu": "1"}}
    assert out["nodeSelector"] == {"accelerator": "a100"}
    assert out["schedulingFuture"] == {"kept": True}


def test_both_shapes_mix_in_one_list_in_order() -> None:
    def fairing_reads(kube_manager: Any, pod_spec: Any, namespace: Any) -> None:
        names = [e.name for e in pod_spec.containers[1].env]
        pod_spec.containers[1].env.append(client.V1EnvVar(name="SEEN", value=",".join(names)))

    out = apply(
        [utils.add_env({"BEFORE": "1"}), fairing_reads, utils.add_env({"AFTER": "1"})],
        two_containers(),
    )
    assert out["containers"][1]["env"] == [
        {"name": "BEFORE", "value": "1"},
        {"name": "SEEN", "value": "BEFORE"},
        {"name": "AFTER", "value": "1"},
    ]


def test_the_shape_comes_from_the_signature() -> None:
    def fairing(backend: Any, pod_spec: Any, namespace: Any, extra: int = 0) -> None: ...

    def ours(pod_spec: PodSpec, namespace: str | None = None, extra: int = 0) -> None: ...

    class Callable:
        def __call__(self, pod_spec: PodSpec, namespace: str | None) -> None: ...

    assert mutator_shape(fairing) == "fairing"
    assert mutator_shape(ours) == "ocibuild"
    assert mutator_shape(Callable()) == "ocibuild"
    assert mutator_shape(functools.partial(fairing, None)) == "ocibuild"
    assert mutator_shape(lambda *args: None) == "ocibuild"
    assert mutator_shape(utils.mounting_pvc("data")) == "ocibuild"
    for wrong in (lambda spec: None, lambda a, b, c, d: None):
        with pytest.raises(PipelineError, match=r"takes \(.*\): a mutator takes \(pod_spec, "):
            mutator_shape(wrong)
    with pytest.raises(PipelineError, match="'gpus' is not callable"):
        apply(["gpus"], two_containers())


def test_a_raising_mutator_is_a_deploy_error_naming_it_and_nothing_changes() -> None:
    def broken(pod_spec: PodSpec, namespace: str | None) -> None:
        pod_spec["serviceAccountName"] = "half-done"
        raise KeyError("containers\nsecond line")

    spec = two_containers()
    before = copy.deepcopy(spec)
    with pytest.raises(DeployError) as caught:
        apply([utils.add_env({"A": "1"}), broken], spec)
    message = str(caught.value)
    assert message == (
        "pod spec mutator test_a_raising_mutator_is_a_deploy_error_naming_it_and_nothing_changes"
        ".<locals>.broken failed: KeyError: 'containers\\nsecond line'"
    )
    assert "\n" not in message
    assert spec == before


def test_a_fairing_mutator_that_raises_or_meets_an_unreadable_spec_is_named() -> None:
    def fairing_indexes(kube_manager: Any, pod_spec: Any, namespace: Any) -> None:
        pod_spec.containers[3].env = []

    with pytest.raises(DeployError, match=r"fairing_indexes failed: IndexError: list index"):
        apply([fairing_indexes], two_containers())
    with pytest.raises(
        DeployError,
        match=r"fairing_indexes failed: the pod spec cannot be read as a kubernetes V1PodSpec",
    ):
        apply([fairing_indexes], {})  # no containers: no V1PodSpec


def test_a_returned_pod_spec_is_taken_any_other_value_ignored() -> None:
    def returns_copy(pod_spec: PodSpec, namespace: str | None) -> PodSpec:
        return {**pod_spec, "serviceAccountName": "from-copy"}

    def returns_part(pod_spec: PodSpec, namespace: str | None) -> object:
        return pod_spec.pop("nodeSelector", None)  # a dict, but no pod spec

    def fairing_returns(kube_manager: Any, pod_spec: Any, namespace: Any) -> Any:
        return client.V1PodSpec(containers=[client.V1Container(name="new", image="n:1")])

    spec = two_containers()
    spec["nodeSelector"] = {"a": "b"}
    out = apply([returns_copy, returns_part], spec)
    assert out["serviceAccountName"] == "from-copy" and "nodeSelector" not in out
    out = apply([fairing_returns], two_containers())
    assert out["containers"] == [{"name": "new", "image": "n:1"}]


def test_without_kubernetes_only_fairing_shaped_mutators_fail() -> None:
    code = (
        "import sys\n"
        "sys.modules['kubernetes'] = None  # as if it were not installed\n"
        "from ocibuild import PipelineError\n"
        "from ocibuild.kubernetes.utils import add_env, apply_pod_spec_mutators\n"
        "spec = {'containers': [{'name': 'main'}]}\n"
        "apply_pod_spec_mutators([add_env({'A': '1'})], spec, None)\n"
        "assert spec['containers'][0]['env'] == [{'name': 'A', 'value': '1'}], spec\n"
        "def fairing(kube_manager, pod_spec, namespace): pass\n"
        "try:\n"
        "    apply_pod_spec_mutators([add_env({'B': '1'}), fairing], spec, None)\n"
        "except PipelineError as err:\n"
        "    print(err)\n"
        "assert [e['name'] for e in spec['containers'][0]['env']] == ['A'], spec\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout == (
        "pod spec mutator fairing takes Fairing's (backend, pod_spec, namespace) and needs the "
        "kubernetes client: pip install 'ocibuild[kubernetes]'\n"
    )


# -- public homes, plugin names ----------------------------------------------------------


def test_the_helpers_live_where_ported_fairing_code_looks() -> None:
    for name in utils.__all__:
        assert getattr(utils, name).__module__ == "ocibuild.kubernetes.utils", name
    for module in (gcp, aws, azure):
        assert module.__all__, module
        for name in module.__all__:
            assert getattr(module, name).__module__ == module.__name__, name
    assert gcp.add_gcp_credentials_if_exists.__name__ == "add_gcp_credentials_if_exists"
    assert repr(utils.mounting_pvc("data")).startswith("<function mounting_pvc('data', '/mnt')")


def test_importing_the_helpers_does_not_import_kubernetes() -> None:
    code = (
        "import sys\n"
        "import ocibuild.kubernetes.utils, ocibuild.cloud.gcp, ocibuild.cloud.aws\n"
        "import ocibuild.cloud.azure\n"
        "ocibuild.kubernetes.utils.apply_pod_spec_mutators(\n"
        "    [ocibuild.cloud.gcp.add_gcp_credentials], {'containers': [{'name': 'm'}]}, None)\n"
        "print(sorted(m for m in sys.modules if m.split('.')[0] == 'kubernetes'))\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert proc.stdout == "[]\n"


CREDENTIAL_NAMES = [
    "aws_credentials",
    "aws_credentials_if_exists",
    "azure_credentials",
    "azure_credentials_if_exists",
    "gcp_credentials",
    "gcp_credentials_if_exists",
]


def test_credentials_are_registered_by_name() -> None:
    assert set(CREDENTIAL_NAMES) <= set(names("pod_spec_mutator"))
    mutators = resolve_pod_spec_mutators(["gcp_credentials_if_exists", "aws_credentials"])
    out = apply(mutators, two_containers())
    assert out["volumes"][0]["secret"] == {"secretName": "user-gcp-sa", "optional": True}
    assert secret_refs(out["containers"][0])["AWS_ACCESS_KEY_ID"] == {
        "name": "aws-secret",
        "key": "AWS_ACCESS_KEY_ID",
    }
    made = create("pod_spec_mutator", "azure_credentials", {"secret_name": "team-azure"})
    refs = secret_refs(apply([made], two_containers())["containers"][0])
    assert refs["AZ_TENANT_ID"] == {"name": "team-azure", "key": "AZ_TENANT_ID"}
    job = create("deployer", "job", {"pod_spec_mutators": ["azure_credentials_if_exists"]})
    out = apply(list(getattr(job, "pod_spec_mutators")), two_containers())  # noqa: B009
    assert secret_refs(out["containers"][1])["AZ_CLIENT_ID"]["optional"] is True
