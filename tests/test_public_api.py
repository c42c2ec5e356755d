"""The public surface is deliberate: `ocibuild.__all__` is pinned, and importing the core or
starting the CLI does not pull in the pipeline's heavy dependencies."""

import importlib
import inspect
import re
import subprocess
import sys
from pathlib import Path

import pytest

import ocibuild

PUBLIC = {
    "AuthenticationError",
    "CacheError",
    "ContainerConfig",
    "CredentialError",
    "DependencyError",
    "DeployError",
    "DeployTimeoutError",
    "Descriptor",
    "Digest",
    "DigestMismatchError",
    "EngineError",
    "FileTreeLayer",
    "Image",
    "ImageConfig",
    "Index",
    "InvalidDigestError",
    "InvalidOptionError",
    "InvalidPlatformError",
    "InvalidReferenceError",
    "DockerBuildError",
    "JobFailedError",
    "Layer",
    "LayerCache",
    "LayerDigests",
    "LayerOptions",
    "Loaded",
    "Manifest",
    "ManifestError",
    "NoClusterError",
    "NotFoundError",
    "OCIBuildError",
    "PipelineError",
    "Platform",
    "PluginError",
    "PodPendingError",
    "Reference",
    "RegistryError",
    "RetryBudgetExceededError",
    "SourceError",
    "TarballError",
    "TarballLayer",
    "TransportError",
    "WorkloadFailedError",
    "WriteResult",
    "__version__",
    "config",
    "copy",
    "load",
    "run",
    "write",
}


def test_all_is_pinned() -> None:
    assert set(ocibuild.__all__) == PUBLIC
    for name in ocibuild.__all__:
        assert getattr(ocibuild, name) is not None


def test_errors_share_one_root_and_natural_builtins() -> None:
    for name in ocibuild.__all__:
        obj = getattr(ocibuild, name)
        if isinstance(obj, type) and name.endswith("Error"):
            assert issubclass(obj, ocibuild.OCIBuildError)
    assert issubclass(ocibuild.InvalidReferenceError, ValueError)
    assert issubclass(ocibuild.NotFoundError, LookupError)
    assert issubclass(ocibuild.NoClusterError, ocibuild.DeployError)


PUBLIC_MODULES = [
    "ocibuild",
    "ocibuild.oci",
    "ocibuild.layer",
    "ocibuild.registry",
    "ocibuild.plugins",
    "ocibuild.hookspecs",
    "ocibuild.preprocessors",
    "ocibuild.config",
    "ocibuild.kubernetes.utils",
    "ocibuild.cloud.gcp",
    "ocibuild.cloud.aws",
    "ocibuild.cloud.azure",
]


@pytest.mark.parametrize("module_name", PUBLIC_MODULES)
def test_exported_classes_and_functions_name_a_public_home(module_name: str) -> None:
    # Tracebacks, reprs, pickles and docs show __module__: it must be a module users import.
    module = importlib.import_module(module_name)
    wrong = []
    for name in module.__all__:
        obj = getattr(module, name)
        if not (inspect.isclass(obj) or inspect.isfunction(obj)):
            continue
        home_name, own_name = obj.__module__, obj.__qualname__
        if any(part.startswith("_") for part in home_name.split(".")):
            wrong.append(f"{name}: __module__ is the private {home_name}")
            continue
        home = importlib.import_module(home_name)
        exported = getattr(home, "__all__", [own_name])
        if getattr(home, own_name, None) is not obj or own_name not in exported:
            wrong.append(f"{name}: {home_name} does not export {own_name}")
    assert not wrong, "\n".join(wrong)


# A public docstring sends readers to private modules or files: it describes internals.
PRIVATE_POINTER = re.compile(r":mod:`~?\.?_|``_\w+\.py``|ocibuild\.(?:\w+\.)*_[a-z]")


@pytest.mark.parametrize("module_name", PUBLIC_MODULES)
def test_public_docstrings_point_at_no_private_module(module_name: str) -> None:
    module = importlib.import_module(module_name)
    wrong = []
    for name in module.__all__:
        obj = getattr(module, name)
        members = [obj]
        if inspect.isclass(obj):
            members += [v for k, v in vars(obj).items() if not k.startswith("_")]
        for member in members:
            member = getattr(member, "fget", getattr(member, "__func__", member))
            if not callable(member):
                continue  # a constant's docstring is its type's
            doc = inspect.getdoc(member) or ""
            wrong += [f"{name}: {hit.group(0)}" for hit in PRIVATE_POINTER.finditer(doc)]
    assert not wrong, "\n".join(wrong)


HEAVY = ("kubernetes", "cloudpickle", "nbformat", "httpx", "pluggy", "tarfile")


def _modules_after(code: str) -> set[str]:
    out = subprocess.run(
        [sys.executable, "-c", code + "\nimport sys; print(' '.join(sys.modules))"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    return set(out.split())


def test_core_import_is_light() -> None:
    loaded = _modules_after("import ocibuild")
    assert not loaded & set(HEAVY), loaded & set(HEAVY)


def test_offline_append_help_is_light() -> None:
    loaded = _modules_after(
        "import contextlib, io\nfrom ocibuild.cli import main\n"
        "with contextlib.suppress(SystemExit), contextlib.redirect_stdout(io.StringIO()):\n"
        "    main(['append', '--help'])"
    )
    assert not loaded & set(HEAVY), loaded & set(HEAVY)


# What `ocibuild --help` and `--version` must not import: the image core, the layer pipeline,
# the HTTP stack, the plugin manager and the stdlib modules that made up most of its start-up.
STARTUP_HEAVY = {
    *HEAVY,
    "cryptography",
    "rich",
    "ocibuild.image",
    "ocibuild.layer",
    "ocibuild.oci",
    "ocibuild.transports._table",
    "ocibuild.transports.registry",
    "ocibuild.pipeline._plugins",
    "ocibuild.pipeline._run",
    "dataclasses",
    "inspect",
    "logging",
    "pathlib",
    "shlex",
}


@pytest.mark.parametrize("flag", ["--help", "--version"])
def test_top_level_help_and_version_are_light(flag: str) -> None:
    loaded = _modules_after(
        "import contextlib, io\nfrom ocibuild.cli import main\n"
        "with contextlib.suppress(SystemExit), contextlib.redirect_stdout(io.StringIO()):\n"
        f"    main([{flag!r}])"
    )
    assert "ocibuild.cli._main" in loaded
    assert not loaded & STARTUP_HEAVY, sorted(loaded & STARTUP_HEAVY)


def test_lazy_names_load_on_first_use_and_claim_the_root() -> None:
    loaded = _modules_after(
        "import ocibuild, sys\nassert 'ocibuild.image' not in sys.modules\n"
        "from ocibuild import Image, EngineError\n"
        "assert Image.__module__ == 'ocibuild', Image.__module__\n"
        "assert EngineError.__module__ == 'ocibuild', EngineError.__module__\n"
        "assert 'Image' in dir(ocibuild)"
    )
    assert "ocibuild.image" in loaded


def test_pod_spec_mutator_helpers_are_light() -> None:
    # Ported Fairing code imports these at the top of a notebook: no client until a
    # Fairing-shaped mutator needs one.
    loaded = _modules_after(
        "import ocibuild.kubernetes.utils, ocibuild.cloud.gcp, ocibuild.cloud.aws, "
        "ocibuild.cloud.azure"
    )
    assert not loaded & set(HEAVY), loaded & set(HEAVY)


def test_version_matches_package_metadata() -> None:
    from importlib.metadata import version

    assert ocibuild.__version__ == version("ocibuild")


# What a small file append to a layout leaves unimported: the operations it does not run, the
# tarball reader, the HTTP and TLS stacks, the credential helpers, and the optional codecs.
APPEND_UNUSED = {
    *HEAVY,
    "cryptography",
    "rich",
    "ocibuild.pipeline._plugins",
    "ocibuild.image._copy",
    "ocibuild.image._index",
    "ocibuild.image._mutate",
    "ocibuild.layer._tarball",
    "ocibuild.layer._tar_index",
    "ocibuild.transports._archive",
    "ocibuild.transports.docker",
    "ocibuild.transports.registry._client",
    "ocibuild.transports.registry._credentials",
    "ocibuild.transports.registry._login",
    "ocibuild.pipeline._run",
    "httpcore",
    "ssl",
    "certifi",
    "subprocess",
    "zstandard",
}


def test_small_append_to_a_layout_imports_only_what_it_uses(tmp_path: Path) -> None:
    (tmp_path / "small.txt").write_bytes(b"x" * 1024)
    out = tmp_path / "out"
    loaded = _modules_after(
        "import contextlib, io\nfrom ocibuild.cli import main\n"
        "with contextlib.redirect_stdout(io.StringIO()):\n"
        f"    assert main(['append', '--to', 'oci:{out}:1', '{tmp_path / 'small.txt'}']) == 0"
    )
    assert (out / "index.json").is_file()  # the append ran
    assert "ocibuild.layer._filetree" in loaded
    assert not loaded & APPEND_UNUSED, sorted(loaded & APPEND_UNUSED)
