"""The pipeline's typed contracts: deploy handles, what factories must make, plugin transports."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import ocibuild
from ocibuild import DeployError, PipelineError, PluginError
from ocibuild.hookspecs import hookimpl
from ocibuild.pipeline import (
    Builder,
    ContextStore,
    Deployer,
    DeployHandle,
    DeployStatus,
    PodSpec,
    Preprocessor,
)
from ocibuild.pipeline.builders import AppendBuilder
from ocibuild.pipeline.deployers import Job, LocalDeployer, LocalRun
from ocibuild.plugins import Plugins, get_plugins, list_plugins, reset_plugins
from ocibuild.preprocessors import PythonPreprocessor
from ocibuild.transports import ImageSink, ImageSource, Location, Transport, open_sink, open_source
from tests.pipeline._support import child_env, ocibuild_cli
from tests.pipeline.conftest import PythonBases
from tests.support import BaseImage, skopeo_inspect


@pytest.fixture
def job(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    (tmp_path / "job.py").write_text("import sys\nprint('line 1')\nprint('line 2')\n")
    monkeypatch.chdir(tmp_path)
    return tmp_path / "job.py"


def test_the_builtins_follow_the_protocols(job: Path) -> None:
    pre = PythonPreprocessor(input_files=["job.py"])
    assert isinstance(pre, Preprocessor)
    assert isinstance(AppendBuilder(preprocessor=pre, push=False), Builder)
    assert isinstance(LocalDeployer(), Deployer)
    assert isinstance(Job(), Deployer)
    assert not isinstance(object(), DeployHandle)


def test_local_handle_is_a_finished_run(
    job: Path, tmp_path: Path, python_bases: PythonBases
) -> None:
    result = ocibuild.run(
        "job.py",
        base_image=python_bases.local,
        deployer="local",
        to=f"oci:{tmp_path / 'out'}:1",
        cache_dir=tmp_path / "cache",
        stream_log=False,
        cleanup=False,
    )
    handle = result.handle
    assert isinstance(handle, DeployHandle) and isinstance(handle, LocalRun)
    status = handle.status()
    assert status == DeployStatus("succeeded", f"{sys.executable} job.py exited with status 0")
    assert status.done
    assert handle.wait(timeout=1) == status
    assert list(handle.logs()) == ["line 1", "line 2"]
    assert (handle.directory / "app" / "job.py").is_file()  # kept: cleanup=False
    handle.delete()
    assert not handle.directory.exists()
    handle.delete()  # twice is fine

    streamed = LocalDeployer(stream_log=True).deploy(
        result.builder.generate_pod_spec(), result.build.context
    )
    assert list(streamed.logs()) == []  # the output went to the terminal, not to the handle
    assert not streamed.directory.exists()  # cleanup=True removed it already


def test_a_failed_local_run_says_so(job: Path, tmp_path: Path, python_bases: PythonBases) -> None:
    job.write_text("import sys\nprint('bad input')\nsys.exit(3)\n")
    deployer = LocalDeployer(stream_log=False)
    builder = AppendBuilder(
        preprocessor=PythonPreprocessor(input_files=["job.py"]),
        base_image=python_bases.local,
        to=f"oci:{tmp_path / 'out'}:1",
        cache_dir=tmp_path / "cache",
    )
    built = builder.build()
    with pytest.raises(DeployError, match=r"exited with status 3: bad input$"):
        deployer.deploy(builder.generate_pod_spec(), built.context)
    assert deployer.last_run is not None
    assert deployer.last_run.status().phase == "failed"
    assert list(deployer.last_run.logs()) == ["bad input"]


def test_deploy_status_is_one_of_five_phases() -> None:
    assert [DeployStatus(p).done for p in ("pending", "running", "unknown")] == [False] * 3
    assert DeployStatus("failed", "OOMKilled").done
    with pytest.raises(PipelineError, match="'finished' is not one of pending, running"):
        DeployStatus("finished")  # type: ignore[arg-type]


class _NotADeployer:
    def __init__(self, **options: Any) -> None:
        self.options = options


class _NameDeployer:
    """Returns a job name, as Fairing's deployers did: not a handle."""

    def deploy(self, pod_spec: PodSpec, context: object) -> str:
        return "job-1234"


class _BrokenContracts:
    @hookimpl
    def ocibuild_deployers(self) -> Any:
        return {"not-a-deployer": _NotADeployer, "names": _NameDeployer}


@pytest.fixture
def broken_contracts() -> Iterator[None]:
    get_plugins().register(_BrokenContracts(), "broken-contracts", distribution=("bc-dist", "2"))
    try:
        yield
    finally:
        reset_plugins()


@pytest.mark.usefixtures("broken_contracts")
def test_a_factory_that_breaks_its_contract_names_the_plugin(
    job: Path, tmp_path: Path, python_bases: PythonBases
) -> None:
    to = f"oci:{tmp_path / 'out'}:1"
    with pytest.raises(PluginError) as err:
        ocibuild.run("job.py", base_image=python_bases.local, to=to, deployer="not-a-deployer")
    assert str(err.value) == (
        "the deployer 'not-a-deployer' from bc-dist 2 (plugin 'broken-contracts') made a "
        "_NotADeployer, not a Deployer (deploy(pod_spec, context) -> DeployHandle)"
    )
    with pytest.raises(PipelineError, match=r"_NameDeployer.deploy\(\) returned str, expected a"):
        ocibuild.run(
            "job.py",
            base_image=python_bases.local,
            deployer="names",
            to=to,
            cache_dir=tmp_path / "cache",
        )


def test_a_context_store_is_put_and_delete(tmp_path: Path) -> None:
    class DirectoryStore:
        def put(self, context: Any, key: str) -> str:
            target = tmp_path / key
            target.write_bytes(Path(context).read_bytes())
            return target.as_uri()

        def delete(self, url: str) -> None:
            Path(url.removeprefix("file://")).unlink(missing_ok=True)

    store = DirectoryStore()
    assert isinstance(store, ContextStore)
    (tmp_path / "ctx.tar").write_bytes(b"tar")
    url = store.put(tmp_path / "ctx.tar", "build-1")
    assert Path(url.removeprefix("file://")).read_bytes() == b"tar"
    store.delete(url)
    store.delete(url)
    assert not isinstance(object(), ContextStore)


# -- transports from plugins ----------------------------------------------------------------


class _MemStore:
    """A plugin providing ``mem:NAME[:TAG]``: images kept in OCI layouts under ``root``."""

    root: Path | None = None

    def _layout(self, location: Location) -> Location:
        assert self.root is not None
        tag = f":{location.tag}" if location.tag else ""
        return Location.parse(f"oci:{self.root / (location.path or 'default')}{tag}")

    def open_source(self, location: Location, registry_options: Any) -> ImageSource:
        return open_source(self._layout(location))

    def open_sink(self, location: Location, registry_options: Any) -> ImageSink:
        return open_sink(self._layout(location))

    @hookimpl
    def ocibuild_transports(self) -> dict[str, Transport]:
        return {"mem": Transport("mem", self.open_source, self.open_sink)}


_MEM = _MemStore()  # one object: the transport table is one per process


@pytest.fixture
def mem_store(tmp_path: Path) -> Iterator[Path]:
    _MEM.root = tmp_path / "mem"
    get_plugins().register(_MEM, "memstore", distribution=("ocibuild-memstore", "1.0"))
    try:
        yield _MEM.root
    finally:
        reset_plugins()


def test_a_plugin_transport_copies_both_ways(
    mem_store: Path, base_layout: BaseImage, tmp_path: Path
) -> None:
    pushed = ocibuild.copy(base_layout.ref, "mem:store:1")
    assert pushed.reference == f"mem:store:1@{base_layout.manifest_digest}"
    assert (mem_store / "store" / "index.json").is_file()
    back = ocibuild.copy("mem:store:1", f"oci:{tmp_path / 'back'}:1")
    assert back.digest == pushed.digest
    assert skopeo_inspect(f"oci:{tmp_path / 'back'}:1")["Digest"] == base_layout.manifest_digest
    assert ocibuild.load("mem:store:1").digest == pushed.digest
    memstore = next(p for p in list_plugins() if p.name == "memstore")
    assert memstore.provides == {"transport": ("mem",)}


class _Clash:
    def __init__(self, kind: str, key: str | None = None) -> None:
        self.transport = Transport(kind, _no_source)
        self.key = key or kind

    @hookimpl
    def ocibuild_transports(self) -> dict[str, Transport]:
        return {self.key: self.transport}


def _no_source(location: Location, registry_options: Any) -> ImageSource:
    raise AssertionError("never opened")


def test_transport_contract_errors_name_the_plugins() -> None:
    plugins = Plugins(autoload=False)
    plugins.register(_Clash("twice"), "first", distribution=("dist-a", "1"))
    plugins.register(_Clash("twice"), "second", distribution=("dist-b", "2"))
    with pytest.raises(PluginError) as err:
        plugins.transports()
    assert str(err.value) == (
        "the transport 'twice' is provided by both dist-a 1 (plugin 'first') and "
        "dist-b 2 (plugin 'second'); uninstall one of them"
    )

    plugins = Plugins(autoload=False)
    plugins.register(_Clash("oci"), "taker", distribution=("dist-c", "3"))
    with pytest.raises(PluginError, match=r"the transport 'oci' of dist-c 3 \(plugin 'taker'\) "):
        plugins.transports()

    plugins = Plugins(autoload=False)
    plugins.register(_Clash("right", key="wrong"), "mislabelled", distribution=("dist-d", "4"))
    with pytest.raises(PluginError, match="gives the transport 'right' as 'wrong'"):
        plugins.transports()


LIBRARY = """\
import sys
import ocibuild
ocibuild.copy(sys.argv[1], f"oci:{sys.argv[2]}:copy")
light = "pluggy" not in sys.modules  # a known prefix never loads the plugins
print(ocibuild.copy(f"oci:{sys.argv[2]}:copy", "testmem:app:1").reference, light)
"""


def test_an_installed_plugin_transport_works_from_plain_library_code(
    plugin_site: Path, base_layout: BaseImage, tmp_path: Path
) -> None:
    env = child_env(
        PYTHONPATH=str(plugin_site),
        OCIBUILD_CACHE_DIR=str(tmp_path / "cache"),
        OCIBUILD_TESTPLUGIN_STORE=str(tmp_path / "store"),
    )
    proc = subprocess.run(
        [sys.executable, "-c", LIBRARY, base_layout.ref, str(tmp_path / "copy")],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout == f"testmem:app:1@{base_layout.manifest_digest} True\n"
    assert (tmp_path / "store" / "app" / "index.json").is_file()

    inspected = ocibuild_cli("inspect", "--json", "testmem:app:1", env=env)
    assert inspected.returncode == 0, inspected.stderr
    assert json.loads(inspected.stdout)["digest"] == base_layout.manifest_digest
    off = ocibuild_cli(
        "inspect", "testmem:app:1", env={**env, "OCIBUILD_DISABLE_PLUGIN_AUTOLOAD": "1"}
    )
    assert off.returncode == 1
    assert off.stderr.count("\n") == 1  # one line, whatever the registry parser says


def test_the_contracts_are_exported_from_a_light_package() -> None:
    code = (
        "import sys, ocibuild.pipeline as p\n"
        "print(sorted(p.__all__), p.DeployHandle.__module__)\n"
        "print(sorted(m for m in ('pluggy', 'httpx') if m in sys.modules))\n"
    )
    proc = subprocess.run(
        [sys.executable, "-c", code], env=child_env(), capture_output=True, text=True, check=True
    )
    names = [
        "BuildResult",
        "Builder",
        "Container",
        "ContextStore",
        "DeployHandle",
        "DeployPhase",
        "DeployStatus",
        "Deployer",
        "DryRun",
        "EnvVar",
        "ExecutorContext",
        "ExecutorContextStore",
        "PodSpec",
        "PodSpecMutator",
        "Preprocessor",
        "ResourceRequirements",
        "VolumeMount",
    ]
    assert proc.stdout == f"{names} ocibuild.pipeline\n[]\n"


def test_a_dry_run_is_a_deploy_handle_that_did_nothing() -> None:
    from ocibuild.pipeline import DeployHandle, DryRun
    from ocibuild.pipeline.deployers import DryRun as KubeDryRun

    plan = DryRun([{"kind": "Job"}], "train", "reg/app@sha256:" + "0" * 64, "Job", "ns")
    assert isinstance(plan, DeployHandle) and KubeDryRun is DryRun
    assert (plan.status().phase, plan.wait().phase, list(plan.logs())) == ("pending",) * 2 + ([],)
    assert (plan.namespace, plan.url) == ("ns", None)
    plan.delete()
