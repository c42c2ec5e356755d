"""The config API and ocibuild.run(): Fairing's names, option routing, the job deployer's errors."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

import ocibuild
from ocibuild import DeployError, NoClusterError, PipelineError, PluginError
from ocibuild.config import Config
from ocibuild.pipeline import PodSpec
from ocibuild.pipeline.deployers import Job, LocalRun, find_kube_config
from tests.pipeline.conftest import PythonBases


@pytest.fixture
def script(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.chdir(tmp_path)
    path = tmp_path / "job.py"
    path.write_text("import os\nprint('job ran', os.environ['FAIRING_RUNTIME'])\n")
    return path


@pytest.fixture
def no_kube(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """No Kubernetes configuration: HOME elsewhere, KUBECONFIG and in-cluster env unset."""
    home = tmp_path / "home"
    home.mkdir()
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.delenv("KUBECONFIG", raising=False)
    monkeypatch.delenv("KUBERNETES_SERVICE_HOST", raising=False)
    return home


def test_fairing_names_through_the_package() -> None:
    import ocibuild.config as config_module

    assert ocibuild.config is config_module
    for name in (
        "set_preprocessor",
        "set_builder",
        "set_deployer",
        "run",
        "reset",
        "fn",
        "get_preprocessor",
        "get_builder",
        "get_deployer",
        "deploy",
    ):
        assert callable(getattr(ocibuild.config, name)), name


def test_unknown_names_and_options_are_clear_errors(script: Path) -> None:
    config = Config()
    config.set_preprocessor("nope")
    with pytest.raises(
        PluginError,
        match=r"no preprocessor named 'nope' \(available: "
        r"full_notebook, function, notebook, python\)",
    ):
        config.get_preprocessor()
    config.set_preprocessor("python", executable="job.py", colour="blue")
    with pytest.raises(PipelineError, match=r"preprocessor 'python': .*colour"):
        config.get_preprocessor()
    config.set_preprocessor("python", executable="job.py")
    config.set_builder("kaniko")
    with pytest.raises(
        PluginError, match="no builder named 'kaniko' \\(available: append, cluster, docker\\)"
    ):
        config.get_builder(config.get_preprocessor())
    config.set_builder("append", base_image="oci:x:y")  # push=True needs a registry
    with pytest.raises(PipelineError, match="needs registry="):
        config.get_builder(config.get_preprocessor())


def test_job_without_cluster_after_the_build(
    script: Path, tmp_path: Path, python_bases: PythonBases, no_kube: Path
) -> None:
    config = Config()
    config.set_preprocessor("python", executable="job.py")
    config.set_builder(
        "append",
        base_image=python_bases.local,
        push=False,
        cache_dir=tmp_path / "cache",
        image_name="My Job",
    )
    with pytest.raises(NoClusterError) as err:
        config.run()
    message = str(err.value)
    assert message.startswith("no Kubernetes configuration or cluster was found (looked at ")
    assert f"{no_kube}/.kube/config" in message
    # push=False: the image went to a layout in the cache dir, named after image_name.
    assert f"the image was written as oci:{tmp_path}/cache/images/my-job:" in message


def test_kube_config_is_found_as_kubectl_finds_it(
    tmp_path: Path, no_kube: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    kubeconfig = tmp_path / "kubeconfig"
    kubeconfig.write_text("apiVersion: v1\nkind: Config\n")
    monkeypatch.setenv("KUBECONFIG", f"{tmp_path}/missing:{kubeconfig}")
    assert find_kube_config()[0] == "KUBECONFIG"
    assert find_kube_config(kubeconfig)[0] == str(kubeconfig)
    assert find_kube_config(tmp_path / "missing") == (None, [f"config_file {tmp_path}/missing"])

    monkeypatch.delenv("KUBECONFIG")
    monkeypatch.setenv("KUBERNETES_SERVICE_HOST", "10.0.0.1")
    found, looked = find_kube_config()
    assert found == "in-cluster"
    assert looked == [f"{no_kube}/.kube/config", "in-cluster env KUBERNETES_SERVICE_HOST"]
    monkeypatch.delenv("KUBERNETES_SERVICE_HOST")
    (no_kube / ".kube").mkdir()
    (no_kube / ".kube" / "config").write_text("{}")
    assert find_kube_config()[0] == str(no_kube / ".kube" / "config")


POD_SPEC: PodSpec = {"containers": [{"image": "registry.example/x:1@sha256:" + "a" * 64}]}


def test_job_with_an_unusable_kube_config_is_one_clear_error(
    tmp_path: Path, no_kube: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    kubeconfig = tmp_path / "kubeconfig"
    kubeconfig.write_text("apiVersion: v1\nkind: Config\n")
    monkeypatch.setenv("KUBECONFIG", str(kubeconfig))
    with pytest.raises(NoClusterError) as err:
        Job(pod_spec_mutators=[]).deploy(POD_SPEC, None)
    message = str(err.value)
    assert message.startswith("the Kubernetes configuration KUBECONFIG is unusable: ")
    assert message.endswith(f"the image was pushed as {POD_SPEC['containers'][0]['image']}")


def test_job_with_an_unreachable_api_server_names_it(
    tmp_path: Path, no_kube: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    kubeconfig = tmp_path / "kubeconfig"
    kubeconfig.write_text(
        json.dumps(
            {
                "apiVersion": "v1",
                "kind": "Config",
                "clusters": [{"name": "c", "cluster": {"server": "http://127.0.0.1:9"}}],
                "users": [{"name": "u", "user": {"token": "secret-token-value"}}],
                "contexts": [{"name": "x", "context": {"cluster": "c", "user": "u"}}],
                "current-context": "x",
            }
        )
    )
    monkeypatch.setenv("KUBECONFIG", str(kubeconfig))
    with pytest.raises(DeployError) as err:
        Job(namespace="team").deploy(POD_SPEC, None)
    message = str(err.value)
    assert message.startswith("creating Job team/x-")
    assert "cannot reach the Kubernetes API server at http://127.0.0.1:9" in message
    assert "secret-token-value" not in message


def test_run_routes_options(script: Path, tmp_path: Path, python_bases: PythonBases) -> None:
    result = ocibuild.run(
        "job.py",
        base_image=python_bases.local,
        deployer="local",
        to=f"oci:{tmp_path}/out:1",
        cache_dir=tmp_path / "cache",  # builder options
        stream_log=False,  # a local deployer option
        env={"EXTRA": "1"},  # the python preprocessor and the local deployer both take env
    )
    assert result.image.startswith(f"oci:{tmp_path}/out:1@sha256:")
    assert result.handle.output == "job ran 1\n"
    assert result.build.context.env == {"EXTRA": "1"}
    assert result.deployer.env == {"EXTRA": "1"}
    with pytest.raises(PipelineError, match="unknown option 'colour'"):
        ocibuild.run("job.py", base_image=python_bases.local, deployer="local", colour="red")


def test_fn_runs_a_function(tmp_path: Path, python_bases: PythonBases) -> None:
    namespace: dict[str, object] = {"__name__": "__main__"}
    exec("def train():\n    print('trained')\n", namespace)
    config = Config()
    config.set_builder(
        "append",
        base_image=python_bases.local,
        to=f"oci:{tmp_path}/o:1",
        cache_dir=tmp_path / "cache",
    )
    config.set_deployer("local", stream_log=False)
    run_train = config.fn(namespace["train"])  # type: ignore[arg-type]
    assert run_train.__name__ == "train"
    result = run_train()
    assert isinstance(result.handle, LocalRun)
    assert result.handle.output == "trained\n"
