"""The pod spec mutator ``gcp_service_account`` on pod specs, and found by name."""

from __future__ import annotations

import copy
from pathlib import Path

import pytest
from ocibuild import InvalidOptionError
from ocibuild.kubernetes.utils import apply_pod_spec_mutators, mutator_shape
from ocibuild.pipeline import Container, PodSpec
from ocibuild.plugins import lookup, reset_plugins

from ocibuild_gcp import gcp_service_account
from tests.fixtures_auth import ADC

KEY_PATH = "/etc/secrets/user-gcp-sa.json"


def _pod() -> PodSpec:
    return {
        "containers": [
            {"name": "main", "image": "img", "env": [{"name": "EPOCHS", "value": "3"}]},
            {"name": "sidecar", "image": "side"},
        ],
        "volumes": [{"name": "data", "emptyDir": {}}],
    }


def _env(container: Container) -> dict[str, str | None]:
    return {e["name"]: e.get("value") for e in container.get("env", [])}


def test_every_container_gets_the_key_and_the_project_and_keeps_its_env() -> None:
    pod = _pod()
    gcp_service_account(project="my-project")(pod, "team")

    main, sidecar = pod["containers"]
    assert _env(main) == {
        "EPOCHS": "3",
        "GOOGLE_APPLICATION_CREDENTIALS": KEY_PATH,
        "GOOGLE_CLOUD_PROJECT": "my-project",
    }
    assert _env(sidecar) == {
        "GOOGLE_APPLICATION_CREDENTIALS": KEY_PATH,
        "GOOGLE_CLOUD_PROJECT": "my-project",
    }
    volumes = {v["name"]: v for v in pod["volumes"]}
    assert set(volumes) == {"data", "user-gcp-sa"}
    assert volumes["user-gcp-sa"]["secret"] == {"secretName": "user-gcp-sa"}
    for container in pod["containers"]:
        mounts = [m for m in container["volumeMounts"] if m["name"] == "user-gcp-sa"]
        assert mounts == [{"name": "user-gcp-sa", "mountPath": "/etc/secrets", "readOnly": True}]


def test_applying_it_twice_changes_nothing_more() -> None:
    mutate = gcp_service_account(project="my-project")
    once = _pod()
    mutate(once, None)
    twice = copy.deepcopy(once)
    mutate(twice, None)
    assert twice == once


def test_the_project_defaults_to_this_machine_s(adc: ADC) -> None:
    pod = _pod()
    gcp_service_account()(pod, None)
    assert {_env(c)["GOOGLE_CLOUD_PROJECT"] for c in pod["containers"]} == {adc.project}


def test_the_project_can_come_from_gcloud_s_config(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CLOUDSDK_CORE_PROJECT", "from-gcloud")
    pod = _pod()
    gcp_service_account()(pod, None)
    assert _env(pod["containers"][1])["GOOGLE_CLOUD_PROJECT"] == "from-gcloud"


def test_a_default_project_keeps_a_container_s_own_but_a_given_one_replaces_it(
    adc: ADC,
) -> None:
    def pod() -> PodSpec:
        spec = _pod()
        spec["containers"][0]["env"].append({"name": "GOOGLE_CLOUD_PROJECT", "value": "own"})
        spec["containers"][0]["env"].append({"name": "LAST", "value": "x"})
        return spec

    defaulted = pod()
    gcp_service_account()(defaulted, None)
    assert _env(defaulted["containers"][0])["GOOGLE_CLOUD_PROJECT"] == "own"
    assert _env(defaulted["containers"][1])["GOOGLE_CLOUD_PROJECT"] == adc.project

    given = pod()
    gcp_service_account(project="given")(given, None)
    names = [e["name"] for e in given["containers"][0]["env"]]
    assert names == ["EPOCHS", "GOOGLE_CLOUD_PROJECT", "LAST", "GOOGLE_APPLICATION_CREDENTIALS"]
    assert _env(given["containers"][0])["GOOGLE_CLOUD_PROJECT"] == "given"


def test_no_known_project_sets_none() -> None:
    pod = _pod()
    gcp_service_account()(pod, None)
    for container in pod["containers"]:
        env = _env(container)
        assert "GOOGLE_CLOUD_PROJECT" not in env
        assert env["GOOGLE_APPLICATION_CREDENTIALS"] == KEY_PATH


def test_secret_name_key_and_optional() -> None:
    pod: PodSpec = {"containers": [{"name": "main", "image": "img"}]}
    mutate = gcp_service_account("trainer-sa", key="key.json", project="p", optional=True)
    mutate(pod, None)
    assert _env(pod["containers"][0])["GOOGLE_APPLICATION_CREDENTIALS"] == "/etc/secrets/key.json"
    (volume,) = pod["volumes"]
    assert volume["secret"] == {"secretName": "trainer-sa", "optional": True}
    assert (
        mutate.__name__
        == "gcp_service_account('trainer-sa', key='key.json', project='p', optional=True)"
    )


def test_a_partly_filled_pod_spec_is_fine() -> None:
    pod: PodSpec = {}
    gcp_service_account(project="p")(pod, None)
    assert pod.get("containers", []) == []


def test_an_empty_project_is_refused() -> None:
    with pytest.raises(InvalidOptionError, match="not a project id"):
        gcp_service_account(project=" ")


def test_a_broken_local_key_leaves_the_project_out(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    broken = tmp_path / "broken.json"
    broken.write_text("{not json")
    monkeypatch.setenv("GOOGLE_APPLICATION_CREDENTIALS", str(broken))
    pod = _pod()
    gcp_service_account()(pod, None)
    assert "GOOGLE_CLOUD_PROJECT" not in _env(pod["containers"][0])


def test_ocibuild_finds_it_by_name_and_applies_it_as_its_own_kind(adc: ADC) -> None:
    reset_plugins()
    try:
        factory = lookup("pod_spec_mutator", "gcp_service_account")
    finally:
        reset_plugins()
    assert factory is gcp_service_account
    mutate = factory()
    assert mutator_shape(mutate) == "ocibuild"
    pod = apply_pod_spec_mutators([mutate], _pod(), "default")
    assert _env(pod["containers"][0])["GOOGLE_CLOUD_PROJECT"] == adc.project
