"""Plugins: a real distribution with an ``ocibuild`` entry point, installed by pip."""

from __future__ import annotations

import base64
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from ocibuild import PipelineError, PluginError
from ocibuild.hookspecs import hookimpl
from ocibuild.pipeline import PodSpec
from ocibuild.pipeline._plugins import BUILTIN_PLUGIN, resolve_pod_spec_mutators
from ocibuild.pipeline._run import create
from ocibuild.pipeline.deployers import Job
from ocibuild.plugins import Plugins, get_plugins, reset_plugins
from tests.pipeline._support import child_env, ocibuild_cli, unpack
from tests.pipeline.conftest import PythonBases, pip_install_target, plugin_copy
from tests.support import Registry

E2E = """\
import json, sys
import ocibuild as fairing

fairing.config.set_preprocessor("greeting", message="hi from the plugin")
fairing.config.set_builder("append", base_image=sys.argv[1], to=sys.argv[2])
fairing.config.set_deployer("recorder", record_file=sys.argv[3])
result = fairing.config.run()
status = result.handle.wait()
print(json.dumps({"image": result.image, "phase": status.phase, "message": status.message}))
"""


def plugin_env(site: Path, tmp_path: Path, **extra: str) -> dict[str, str]:
    return child_env(
        PYTHONPATH=str(site),
        OCIBUILD_CACHE_DIR=str(tmp_path / "cache"),
        OCIBUILD_TESTPLUGIN_LOG=str(tmp_path / "hooks.log"),
        **extra,
    )


def test_plugins_lists_the_installed_plugin(plugin_site: Path, tmp_path: Path) -> None:
    proc = ocibuild_cli("plugins", "--json", env=plugin_env(plugin_site, tmp_path))
    assert proc.returncode == 0, proc.stderr
    listed = {p["name"]: p for p in json.loads(proc.stdout)}
    assert listed["testplugin"] == {
        "name": "testplugin",
        "distribution": "ocibuild-testplugin",
        "version": "0.3.1",
        "provides": {
            "preprocessor": ["greeting"],
            "deployer": ["recorder"],
            "transport": ["testmem"],
            "credential_source": ["testsecrets"],
        },
    }
    assert listed[BUILTIN_PLUGIN]["distribution"] == "ocibuild"
    assert listed[BUILTIN_PLUGIN]["provides"]["deployer"] == [
        "job",
        "kfserving",
        "local",
        "pytorchjob",
        "serving",
        "tfjob",
        "trainjob",
    ]

    human = ocibuild_cli("plugins", env=plugin_env(plugin_site, tmp_path))
    assert "testplugin  (ocibuild-testplugin 0.3.1)" in human.stdout
    assert "    preprocessors: greeting" in human.stdout


def test_a_plugin_credential_source_signs_in_to_a_registry(
    plugin_site: Path, tmp_path: Path, python_bases: PythonBases, basic_registry: Registry
) -> None:
    # Nothing the user configured has an entry for the registry: the plugin's source answers.
    assert basic_registry.username and basic_registry.password
    env = plugin_env(
        plugin_site,
        tmp_path,
        DOCKER_CONFIG=str(tmp_path / "docker"),
        REGISTRY_AUTH_FILE=str(tmp_path / "auth.json"),
        OCIBUILD_TESTPLUGIN_REGISTRY=basic_registry.host,
        OCIBUILD_TESTPLUGIN_USERNAME=basic_registry.username,
        OCIBUILD_TESTPLUGIN_PASSWORD=basic_registry.password,
    )
    env.pop("DOCKER_AUTH_CONFIG", None)
    dest = f"{basic_registry.host}/plugin/creds:1"
    pushed = ocibuild_cli("copy", python_bases.local, dest, env=env)
    assert pushed.returncode == 0, pushed.stderr
    assert f"credential {basic_registry.host} plugin/creds" in (tmp_path / "hooks.log").read_text()
    assert basic_registry.password not in pushed.stdout + pushed.stderr

    # What the user configured comes first: a wrong password there is not overridden.
    wrong = base64.b64encode(f"{basic_registry.username}:wrong".encode()).decode()
    (tmp_path / "hooks.log").unlink()
    env["DOCKER_AUTH_CONFIG"] = json.dumps({"auths": {basic_registry.host: {"auth": wrong}}})
    refused = ocibuild_cli("copy", python_bases.local, f"{dest}-again", env=env)
    assert refused.returncode == 1
    assert "$DOCKER_AUTH_CONFIG" in refused.stderr and "Traceback" not in refused.stderr
    hooks = tmp_path / "hooks.log"
    assert not hooks.exists() or "credential " not in hooks.read_text(encoding="utf-8")

    # Without the plugin the registry is asked anonymously, and refuses.
    del env["DOCKER_AUTH_CONFIG"]
    env["OCIBUILD_DISABLE_PLUGIN_AUTOLOAD"] = "1"
    anonymous = ocibuild_cli("copy", python_bases.local, f"{dest}-anon", env=env)
    assert anonymous.returncode == 1 and "Traceback" not in anonymous.stderr


def test_a_registry_that_asks_for_nothing_never_loads_the_plugins(
    plugin_site: Path, tmp_path: Path, python_bases: PythonBases, registry: Registry
) -> None:
    env = plugin_env(plugin_site, tmp_path, OCIBUILD_TESTPLUGIN_REGISTRY=registry.host)
    pushed = ocibuild_cli("copy", python_bases.local, f"{registry.host}/plugin/anon:1", env=env)
    assert pushed.returncode == 0, pushed.stderr
    assert not (tmp_path / "hooks.log").exists()


@pytest.mark.parametrize(
    ("kind", "name"),
    [
        ("deployer", "gcpjob"),
        ("deployer", "gcpserving"),
        ("context_store", "gcs"),
        ("pod_spec_mutator", "gcp_service_account"),
    ],
)
def test_a_name_of_a_plugin_not_installed_says_which_package(kind: str, name: str) -> None:
    plugins = Plugins(autoload=False)  # the built-ins only, whatever this machine installed
    with pytest.raises(PluginError) as raised:
        plugins.lookup(kind, name)
    message = str(raised.value)
    assert f"{name!r} comes with the plugin ocibuild-gcp" in message
    assert "pip install ocibuild-gcp" in message and "\n" not in message


def test_the_cli_names_the_package_of_a_missing_deployer(tmp_path: Path) -> None:
    (tmp_path / "train.py").write_text("print('hi')\n")
    proc = ocibuild_cli(
        "run",
        "train.py",
        "--to",
        f"oci:{tmp_path / 'out'}:1",
        "--deployer",
        "gcpjob",
        env=child_env(OCIBUILD_DISABLE_PLUGIN_AUTOLOAD="1"),
        cwd=tmp_path,
    )
    assert proc.returncode != 0
    (line,) = proc.stderr.strip().splitlines()
    assert "gcpjob" in line and "pip install ocibuild-gcp" in line
    assert not (tmp_path / "out").exists()  # refused before anything was built


def test_plugin_preprocessor_and_deployer_end_to_end(
    plugin_site: Path, tmp_path: Path, python_bases: PythonBases, registry: Registry
) -> None:
    script = tmp_path / "e2e.py"
    script.write_text(E2E)
    record = tmp_path / "record.json"
    dest = f"{registry.host}/plugin/greeting:1"
    proc = subprocess.run(
        [sys.executable, str(script), python_bases.local, dest, str(record)],
        env=plugin_env(plugin_site, tmp_path),
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout)
    assert out["image"].startswith(dest + "@sha256:")
    assert (out["phase"], out["message"]) == ("succeeded", f"recorded in {record}")

    recorded = json.loads(record.read_text())
    container = recorded["pod_spec"]["containers"][0]
    assert container["image"] == out["image"]
    assert container["command"] == ["python", "greet.py"] == recorded["command"]
    assert container["workingDir"] == "/srv"
    assert "/srv/greet.py" in recorded["files"]

    hooks = (tmp_path / "hooks.log").read_text().splitlines()
    assert hooks == [
        f"after_build {out['image']} python greet.py",
        f"after_push {out['image']}",
        f"before_deploy RecorderDeployer {out['image']}",
    ]

    image = unpack(out["image"], tmp_path / "unpacked")
    assert image.files("/srv") == {"/srv/greet.py": b"print('hi from the plugin')\n"}
    assert image.env["GREETING"] == "hi from the plugin"
    ran = image.run()
    assert ran.returncode == 0, ran.stderr
    assert ran.stdout == "hi from the plugin\n"


def test_plugin_deployer_from_the_cli(
    plugin_site: Path, tmp_path: Path, python_bases: PythonBases
) -> None:
    (tmp_path / "job.py").write_text("print('job')\n")
    record = tmp_path / "record.json"
    proc = ocibuild_cli(
        "run",
        "job.py",
        "--base",
        python_bases.local,
        "--to",
        f"oci:{tmp_path / 'out'}:1",
        "--deployer",
        "recorder",
        "--deployer-option",
        f"record_file={record}",
        env=plugin_env(plugin_site, tmp_path),
        cwd=tmp_path,
    )
    assert proc.returncode == 0, proc.stderr
    assert json.loads(record.read_text())["command"] == ["python", "job.py"]
    hooks = (tmp_path / "hooks.log").read_text()
    assert "after_push" not in hooks  # written to a layout, not pushed


@pytest.fixture(scope="module")
def twin_site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The test plugin and a renamed copy of it, both providing 'greeting' and 'recorder'."""
    work = tmp_path_factory.mktemp("twin")
    site = work / "site"
    twin = plugin_copy(
        work / "twin-src",
        dist="ocibuild-testplugin-twin",
        module="ocibuild_testplugin_twin",
        entry_point="twin",
    )
    pip_install_target(twin, site)
    return pip_install_target(Path(__file__).parents[1] / "plugins" / "ocibuild-testplugin", site)


def test_two_plugins_with_one_name_is_an_error(twin_site: Path, tmp_path: Path) -> None:
    (tmp_path / "job.py").write_text("print('job')\n")
    proc = ocibuild_cli(
        "build",
        "job.py",
        "--preprocessor",
        "greeting",
        "--to",
        f"oci:{tmp_path / 'out'}:1",
        env=plugin_env(twin_site, tmp_path),
        cwd=tmp_path,
    )
    assert proc.returncode == 1
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, proc.stderr
    assert "is provided by both" in lines[0]
    assert "ocibuild-testplugin 0.3.1 (plugin 'testplugin')" in lines[0]
    assert "ocibuild-testplugin-twin 0.3.1 (plugin 'twin')" in lines[0]
    assert "name 'greeting'" in lines[0] or "name 'recorder'" in lines[0]
    # Listing still works, to find the culprits.
    listed = ocibuild_cli("plugins", "--json", env=plugin_env(twin_site, tmp_path))
    assert {p["distribution"] for p in json.loads(listed.stdout)} >= {
        "ocibuild-testplugin",
        "ocibuild-testplugin-twin",
    }


BROKEN = '''\
"""A plugin whose import fails, as when it needs a library that is not installed."""
import ocibuild_missing_native_library  # noqa: F401
'''


@pytest.fixture(scope="module")
def broken_site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    work = tmp_path_factory.mktemp("broken")
    src = plugin_copy(
        work / "src",
        dist="ocibuild-brokenplugin",
        module="ocibuild_brokenplugin",
        entry_point="broken",
        init_text=BROKEN,
    )
    return pip_install_target(src, work / "site")


def test_plugin_that_fails_to_import(broken_site: Path, tmp_path: Path) -> None:
    proc = ocibuild_cli("plugins", env=plugin_env(broken_site, tmp_path))
    assert proc.returncode == 1
    assert proc.stderr == (
        "ocibuild: error: plugin 'broken' from ocibuild-brokenplugin 0.3.1 (entry point "
        "ocibuild_brokenplugin) failed to import: ModuleNotFoundError: No module named "
        "'ocibuild_missing_native_library'\n"
    )


_PARSE = """
import ocibuild, sys
from ocibuild.transports import Location
try:
    print(Location.parse(sys.argv[1]).kind)
except ocibuild.OCIBuildError as err:
    print("error:", err)
"""


def test_a_broken_plugin_does_not_break_plain_references(broken_site: Path, tmp_path: Path) -> None:
    """``python:3.11`` looks like a transport prefix; a broken plugin must not make it fail."""
    env = plugin_env(broken_site, tmp_path)
    plain = subprocess.run(
        [sys.executable, "-c", _PARSE, "python:3.11-slim"], env=env, capture_output=True,
        text=True, check=True,
    )  # fmt: skip
    assert plain.stdout == "registry\n"
    assert "failed to import" in plain.stderr  # said once, as a warning
    transport = subprocess.run(
        [sys.executable, "-c", _PARSE, "mem:/some/path"], env=env, capture_output=True,
        text=True, check=True,
    )  # fmt: skip
    assert transport.stdout.startswith("error: plugin 'broken' from ocibuild-brokenplugin")


def test_kill_switch_keeps_only_the_builtins(broken_site: Path, tmp_path: Path) -> None:
    env = plugin_env(broken_site, tmp_path, OCIBUILD_DISABLE_PLUGIN_AUTOLOAD="1")
    proc = ocibuild_cli("plugins", "--json", env=env)
    assert proc.returncode == 0, proc.stderr
    listed = json.loads(proc.stdout)
    assert [p["name"] for p in listed] == [BUILTIN_PLUGIN]
    assert listed[0]["provides"]["preprocessor"] == [
        "full_notebook",
        "function",
        "notebook",
        "python",
    ]


class _BadReturn:
    """A plugin object whose hook breaks the contract."""

    @hookimpl
    def ocibuild_deployers(self) -> Any:
        return ["not", "a", "dict"]


class _Raising:
    @hookimpl
    def ocibuild_builders(self) -> Any:
        raise RuntimeError("boom\nsecond line")


class _Extra:
    @hookimpl
    def ocibuild_deployers(self) -> Any:
        return {"extra": dict}


def test_contract_errors_name_the_plugin() -> None:
    plugins = Plugins(autoload=False)
    plugins.register(_BadReturn(), "bad", distribution=("bad-dist", "1.0"))
    with pytest.raises(
        PluginError,
        match=r"plugin 'bad' from bad-dist: ocibuild_deployers\(\) "
        r"must return a dict of name -> factory, got list",
    ):
        plugins.lookup("deployer", "job")

    plugins = Plugins(autoload=False)
    plugins.register(_Raising(), "raising")
    with pytest.raises(PluginError, match=r"plugin 'raising' .* RuntimeError: boom second line$"):
        plugins.names("builder")

    plugins = Plugins(autoload=False)
    plugins.register(_Extra(), "extra", distribution=("extra-dist", "2"))
    assert plugins.lookup("deployer", "extra") is dict
    assert plugins.names("deployer") == [
        "extra",
        "job",
        "kfserving",
        "local",
        "pytorchjob",
        "serving",
        "tfjob",
        "trainjob",
    ]
    with pytest.raises(PluginError, match=r"no deployer named 'nope' \(available: extra, job"):
        plugins.lookup("deployer", "nope")
    with pytest.raises(PluginError, match="cannot be registered"):
        plugins.register(_Extra(), "extra")


class _Mutators:
    @hookimpl
    def ocibuild_pod_spec_mutators(self) -> Any:
        def gpus(count: int = 1) -> Any:
            def mutate(pod_spec: dict[str, Any], namespace: str | None) -> None:
                pod_spec["containers"][0]["resources"] = {"limits": {"nvidia.com/gpu": count}}

            return mutate

        return {"gpus": gpus}


def test_pod_spec_mutators_by_name() -> None:
    plugins = get_plugins()
    plugins.register(_Mutators(), "mutators", distribution=("mutators-dist", "1"))
    try:
        direct = lambda spec, ns: spec.update(nodeSelector={"pool": "a"})  # noqa: E731
        mutators = resolve_pod_spec_mutators(["gpus", direct])
        spec: PodSpec = {"containers": [{"image": "x"}]}
        for mutate in mutators:
            mutate(spec, "team")
        assert spec == {
            "containers": [{"image": "x", "resources": {"limits": {"nvidia.com/gpu": 1}}}],
            "nodeSelector": {"pool": "a"},
        }
        job = create("deployer", "job", {"pod_spec_mutators": ["gpus", direct]})
        assert isinstance(job, Job)
        assert [callable(m) for m in job.pod_spec_mutators] == [True, True]
        with pytest.raises(PluginError, match="no pod spec mutator named 'tpus'"):
            create("deployer", "job", {"pod_spec_mutators": ["tpus"]})
        with pytest.raises(PipelineError, match="'tpus' is not callable"):
            Job(pod_spec_mutators=["tpus"])  # type: ignore[list-item]
    finally:
        reset_plugins()


def test_importing_the_front_doors_stays_light() -> None:
    code = (
        "import sys, ocibuild, ocibuild.config, ocibuild.plugins\n"
        "ocibuild.plugins.get_plugins().names('preprocessor')\n"
        # Every name lookup builds every kind's registry: the builders' hooks (append, docker)
        # must not load the HTTP stack either; a build loads it when it talks to a registry.
        "heavy = ('cloudpickle', 'nbformat', 'kubernetes', 'IPython', 'numpy', 'httpx')\n"
        "print(sorted(m for m in heavy if m in sys.modules))\n"
    )
    proc = subprocess.run(
        [sys.executable, "-c", code],
        env=child_env(),
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    assert proc.stdout == "[]\n"
