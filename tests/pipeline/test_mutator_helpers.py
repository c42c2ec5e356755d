"""The pod spec mutator helpers: what each adds, to every container, on full and partly filled
specs, without duplicates; the cloud credentials as Fairing laid them out."""

from __future__ import annotations

import copy
import json
from typing import Any, cast

import pytest

from ocibuild import DeployError, InvalidOptionError
from ocibuild.cloud import aws, azure, gcp
from ocibuild.kubernetes import utils
from ocibuild.pipeline import PodSpec, PodSpecMutator
from tests.pipeline._pod_specs import apply, secret_refs, two_containers

PARTLY_FILLED: list[Any] = [
    {},
    {"containers": None},
    {"containers": []},
    {"containers": [{}]},
    {"containers": [{"name": "c", "resources": None, "env": None, "volumeMounts": None}]},
    {"containers": [{"name": "c", "resources": {"limits": None}}], "volumes": None},
]

EVERY_HELPER: list[PodSpecMutator] = [
    utils.get_resource_mutator(cpu=1, memory="2Gi", gpu=1),
    utils.mounting_pvc("data"),
    utils.volume_mounts("config_map", "settings", "/etc/settings"),
    utils.mount_secret("db", "/etc/db", items=["password"]),
    utils.mount_config_map("cfg", "/etc/cfg", optional=True),
    utils.env_from_secret("db", ["DB_USER"]),
    utils.env_from_config_map("cfg"),
    utils.add_env({"A": "1"}),
    utils.node_selector({"pool": "gpu"}),
    utils.add_tolerations([{"key": "gpu", "operator": "Exists"}]),
    utils.image_pull_secrets("regcred"),
    utils.gcp_credentials(),
    utils.aws_credentials(optional=True),
    utils.azure_credentials(),
]


# -- the helpers -------------------------------------------------------------------------


def test_resources_follow_fairing_on_every_container() -> None:
    spec = two_containers()
    cast("dict[str, Any]", spec["containers"][1])["resources"] = {
        "limits": {"ephemeral-storage": "1Gi"},
        "requests": {"cpu": "1"},
    }
    out = apply([utils.get_resource_mutator(cpu=2, memory=4, gpu=1, gpu_vendor="amd")], spec)
    main, sidecar = out["containers"]
    wanted = {"cpu": "2", "memory": "3.73Gi", "amd.com/gpu": "1"}  # 4 GB in GiB, as Fairing had
    assert main["resources"] == {"limits": wanted}
    assert sidecar["resources"] == {
        "limits": {"ephemeral-storage": "1Gi", **wanted},
        "requests": {"cpu": "1"},  # requests are left to the user (and default to the limits)
    }
    out = apply([utils.get_resource_mutator(cpu="500m", memory="8Gi")], two_containers())
    assert out["containers"][0]["resources"] == {"limits": {"cpu": "500m", "memory": "8Gi"}}
    assert apply([utils.get_resource_mutator(cpu=0.5)], two_containers())["containers"][0][
        "resources"
    ] == {"limits": {"cpu": "0.5"}}


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"cpu": "lots"}, "cpu 'lots' is not a number or a Kubernetes quantity"),
        ({"cpu": 0}, "cpu must be more than 0"),
        ({"memory": -1}, "memory must be more than 0"),
        ({"memory": 0.001}, r"memory in GiB \(from GB, to 2 places\) must be more than 0, got 0.0"),
        ({"memory": "4 GB"}, "memory '4 GB' is not"),
        ({"gpu": 1.5}, "gpu must be a whole number"),
        ({"gpu": 1, "gpu_vendor": "NVIDIA!"}, "gpu_vendor 'NVIDIA!'"),
    ],
)
def test_resource_arguments_are_checked_when_the_helper_is_called(
    kwargs: dict[str, Any], message: str
) -> None:
    with pytest.raises(InvalidOptionError, match=message):
        utils.get_resource_mutator(**kwargs)


PASSWORD_AS_PW = {"key": "password", "path": "pw"}


def test_volumes_are_mounted_in_every_container() -> None:
    out = apply(
        [
            utils.mounting_pvc("data"),
            utils.mount_secret("db", "/etc/db", items={"password": "pw"}),
            utils.mount_config_map("cfg", "/etc/cfg", optional=True),
        ],
        two_containers(),
    )
    assert out["volumes"] == [
        {"name": "fairing-volume-data", "persistentVolumeClaim": {"claimName": "data"}},
        {
            "name": "db",
            "secret": {"secretName": "db", "items": [{"key": "password", "path": "pw"}]},
        },
        {"name": "cfg", "configMap": {"name": "cfg", "optional": True}},
    ]
    for container in out["containers"]:
        assert container["volumeMounts"] == [
            {"name": "fairing-volume-data", "mountPath": "/mnt"},
            {"name": "db", "mountPath": "/etc/db", "readOnly": True},
            {"name": "cfg", "mountPath": "/etc/cfg", "readOnly": True},
        ]


def test_two_mutators_mounting_one_secret_give_one_volume() -> None:
    twice = [utils.mount_secret("db", "/etc/db"), utils.mount_secret("db", "/etc/db")]
    out = apply([*twice, utils.mount_secret("db", "/etc/also")], two_containers())
    assert out["volumes"] == [{"name": "db", "secret": {"secretName": "db"}}]
    assert [m["mountPath"] for m in out["containers"][1]["volumeMounts"]] == [
        "/etc/db",
        "/etc/also",
    ]
    # gcp_credentials mounts user-gcp-sa at /etc/secrets too: the same volume, the same mount.
    out = apply(
        [utils.mount_secret("user-gcp-sa", "/etc/secrets"), gcp.add_gcp_credentials],
        two_containers(),
    )
    assert out["volumes"] == [{"name": "user-gcp-sa", "secret": {"secretName": "user-gcp-sa"}}]
    assert len(out["containers"][0]["volumeMounts"]) == 1


def test_a_volume_name_taken_by_another_volume_is_not_reused() -> None:
    spec = two_containers()
    spec["volumes"] = [{"name": "db", "emptyDir": {}}]
    out = apply([utils.mount_secret("db", "/etc/db", items=["password"])], spec)
    assert out["volumes"][0] == {"name": "db", "emptyDir": {}}
    ours = out["volumes"][1]
    assert ours["name"].startswith("db-") and ours["name"] != "db"
    assert ours["secret"]["secretName"] == "db"
    assert out["containers"][0]["volumeMounts"] == [
        {"name": ours["name"], "mountPath": "/etc/db", "readOnly": True}
    ]


def test_a_secret_name_that_is_no_volume_name_gets_a_valid_one() -> None:
    out = apply([utils.mount_secret("tls.example.com", "/tls")], two_containers())
    name = out["volumes"][0]["name"]
    assert name.startswith("tls-example-com-") and len(name) <= 63
    assert out["volumes"][0]["secret"] == {"secretName": "tls.example.com"}
    long_name = apply([utils.mounting_pvc("p" * 80)], two_containers())["volumes"][0]["name"]
    assert long_name.startswith("fairing-volume-ppp") and len(long_name) <= 63


def test_two_volumes_at_one_path_is_an_error_naming_the_mutator() -> None:
    mutators = [utils.mount_secret("a", "/etc/creds"), utils.mount_config_map("b", "/etc/creds")]
    with pytest.raises(DeployError) as caught:
        apply(mutators, two_containers())
    assert str(caught.value) == (
        "pod spec mutator mount_config_map('b', '/etc/creds') failed: container 'main' already "
        "mounts 'a' at /etc/creds: choose another mount path"
    )


def test_env_helpers_set_every_container_and_the_later_mutator_wins() -> None:
    out = apply(
        [utils.add_env({"A": "1", "N": 3}), utils.add_env({"A": "2"}), utils.add_env({"B": "x"})],
        two_containers(),
    )
    assert out["containers"][0]["env"] == [
        {"name": "PYTHONUNBUFFERED", "value": "1"},
        {"name": "A", "value": "2"},  # replaced where it stood
        {"name": "N", "value": "3"},
        {"name": "B", "value": "x"},
    ]
    assert [e["name"] for e in out["containers"][1]["env"]] == ["A", "N", "B"]
    with pytest.raises(InvalidOptionError, match="env 'X': True is not a string or a number"):
        utils.add_env({"X": True})


def test_env_from_secrets_and_config_maps() -> None:
    out = apply(
        [
            utils.env_from_secret("db", ["DB_USER"]),
            utils.env_from_secret("db", {"DB_PASSWORD": "password"}, optional=True),
            utils.env_from_secret("tokens"),
            utils.env_from_config_map("cfg", "LEVEL"),
            utils.env_from_config_map("flags", optional=True),
        ],
        {"containers": [{"name": "main"}]},
    )
    container = out["containers"][0]
    assert container["env"] == [
        {"name": "DB_USER", "valueFrom": {"secretKeyRef": {"name": "db", "key": "DB_USER"}}},
        {
            "name": "DB_PASSWORD",
            "valueFrom": {"secretKeyRef": {"name": "db", "optional": True, "key": "password"}},
        },
        {"name": "LEVEL", "valueFrom": {"configMapKeyRef": {"name": "cfg", "key": "LEVEL"}}},
    ]
    assert container["envFrom"] == [
        {"secretRef": {"name": "tokens"}},
        {"configMapRef": {"name": "flags", "optional": True}},
    ]


def test_scheduling_and_pull_secrets() -> None:
    spec = two_containers()
    spec["nodeSelector"] = {"zone": "a"}
    toleration = {"key": "gpu", "operator": "Exists", "effect": "NoSchedule"}
    out = apply(
        [
            utils.node_selector({"pool": "gpu"}),
            utils.get_node_selector({"pool": "big"}),  # Fairing's name; the later one wins
            utils.add_tolerations(toleration),
            utils.add_tolerations([toleration, {"key": "spot", "operator": "Exists"}]),
            utils.image_pull_secrets("regcred", "other"),
            utils.image_pull_secrets("regcred"),
        ],
        spec,
    )
    assert out["nodeSelector"] == {"zone": "a", "pool": "big"}
    assert out["tolerations"] == [toleration, {"key": "spot", "operator": "Exists"}]
    assert out["imagePullSecrets"] == [{"name": "regcred"}, {"name": "other"}]
    with pytest.raises(InvalidOptionError, match="toleration 'gpu' is not a mapping"):
        utils.add_tolerations(["gpu"])  # type: ignore[list-item]
    with pytest.raises(InvalidOptionError, match="volume_type 'nfs' is not one of"):
        utils.volume_mounts("nfs", "share", "/share")


@pytest.mark.parametrize("spec", PARTLY_FILLED, ids=json.dumps)
def test_every_helper_copes_with_a_partly_filled_spec(spec: dict[str, Any]) -> None:
    out = apply(EVERY_HELPER, cast("PodSpec", copy.deepcopy(spec)))
    # Pod-level edits happen whether or not there are containers.
    assert out["nodeSelector"] == {"pool": "gpu"}
    assert out["imagePullSecrets"] == [{"name": "regcred"}]
    assert {v["name"] for v in out["volumes"]} >= {"fairing-volume-data", "db", "user-gcp-sa"}
    for container in out.get("containers") or []:
        assert container["resources"]["limits"] == {
            "cpu": "1",
            "memory": "2Gi",
            "nvidia.com/gpu": "1",
        }
        assert len(container["volumeMounts"]) == 5
        assert "GOOGLE_APPLICATION_CREDENTIALS" in {e["name"] for e in container["env"]}


def test_every_helper_is_idempotent() -> None:
    once = apply(EVERY_HELPER, two_containers())
    assert apply(EVERY_HELPER, cast("PodSpec", copy.deepcopy(once))) == once


# -- cloud credentials -------------------------------------------------------------------


def test_gcp_credentials_as_fairing_had_them() -> None:
    out = apply([gcp.add_gcp_credentials], two_containers())
    assert out["volumes"] == [{"name": "user-gcp-sa", "secret": {"secretName": "user-gcp-sa"}}]
    for container in out["containers"]:
        assert {"name": "user-gcp-sa", "mountPath": "/etc/secrets", "readOnly": True} in container[
            "volumeMounts"
        ]
        assert {
            "name": "GOOGLE_APPLICATION_CREDENTIALS",
            "value": "/etc/secrets/user-gcp-sa.json",
        } in container["env"]
    other = apply([utils.gcp_credentials("team-sa", key="key.json")], two_containers())
    assert other["volumes"][0]["secret"] == {"secretName": "team-sa"}
    assert other["containers"][1]["env"] == [
        {"name": "GOOGLE_APPLICATION_CREDENTIALS", "value": "/etc/secrets/key.json"}
    ]


def test_aws_and_azure_credentials_come_from_secret_keys() -> None:
    out = apply([aws.add_aws_credentials, azure.add_azure_credentials], two_containers())
    assert "volumes" not in out
    refs = secret_refs(out["containers"][1])
    assert refs["AWS_ACCESS_KEY_ID"] == {"name": "aws-secret", "key": "AWS_ACCESS_KEY_ID"}
    assert refs["AWS_SECRET_ACCESS_KEY"] == {"name": "aws-secret", "key": "AWS_SECRET_ACCESS_KEY"}
    for key in ("AZ_CLIENT_ID", "AZ_CLIENT_SECRET", "AZ_TENANT_ID", "AZ_SUBSCRIPTION_ID"):
        assert refs[key] == {"name": "azcreds", "key": key}
        assert refs[key.replace("AZ_", "AZURE_")] == {"name": "azcreds", "key": key}
    assert len(refs) == 10


def test_if_exists_marks_the_secret_optional() -> None:
    out = apply(
        [
            gcp.add_gcp_credentials_if_exists,
            aws.add_aws_credentials_if_exists,
            azure.add_azure_credentials_if_exists,
        ],
        two_containers(),
    )
    assert out["volumes"] == [
        {"name": "user-gcp-sa", "secret": {"secretName": "user-gcp-sa", "optional": True}}
    ]
    refs = secret_refs(out["containers"][0])
    assert len(refs) == 10
    assert all(ref["optional"] is True for ref in refs.values())
    plain = apply([gcp.add_gcp_credentials, aws.add_aws_credentials], two_containers())
    assert "optional" not in plain["volumes"][0]["secret"]
    assert all("optional" not in ref for ref in secret_refs(plain["containers"][0]).values())
