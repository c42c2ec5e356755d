"""Docker ``config.json`` and containers ``auth.json``: where they are, their keys, read, write."""

from __future__ import annotations

import contextlib
import json
import os
from pathlib import Path
from typing import Any

from ..._errors import CredentialError

__all__ = [
    "DOCKER_HUB_KEY",
    "auth_file_chain",
    "docker_config_path",
    "hostname_of_key",
    "load_auth_file",
    "lookup_keys",
    "matching_key",
    "save_auth_file",
    "server_url",
]

# The key (and credential-helper server URL) Docker uses for Docker Hub.
DOCKER_HUB_KEY = "https://index.docker.io/v1/"
_HUB_HOSTS = frozenset({"docker.io", "index.docker.io", "registry-1.docker.io"})


def docker_config_path() -> Path:
    """``$DOCKER_CONFIG/config.json``, else ``~/.docker/config.json``."""
    directory = os.environ.get("DOCKER_CONFIG")
    base = Path(directory) if directory else Path.home() / ".docker"
    return base / "config.json"


def auth_file_chain() -> list[Path]:
    """The credential files read after the Docker config, in containers/image's order."""
    paths: list[Path] = []
    if explicit := os.environ.get("REGISTRY_AUTH_FILE"):
        paths.append(Path(explicit))
    if runtime := os.environ.get("XDG_RUNTIME_DIR"):
        paths.append(Path(runtime) / "containers" / "auth.json")
    config_home = os.environ.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    paths.append(Path(config_home) / "containers" / "auth.json")
    paths.append(Path.home() / ".dockercfg")
    return paths


def load_auth_file(path: Path) -> dict[str, Any] | None:
    """The JSON object in ``path`` (legacy ``.dockercfg`` wrapped as ``auths``); None if absent."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return None
    except OSError as err:
        raise CredentialError(f"cannot read credential file {path}: {err.strerror}") from err
    if not text.strip():
        return {}
    try:
        data = json.loads(text)
    except ValueError as err:
        raise CredentialError(
            f"credential file {path} is not valid JSON (line {getattr(err, 'lineno', '?')}); "
            "fix or remove it"
        ) from None
    if not isinstance(data, dict):
        raise CredentialError(
            f"credential file {path} does not hold a JSON object; fix or remove it"
        )
    if path.name == ".dockercfg" and "auths" not in data:
        data = {"auths": data}
    return data


def save_auth_file(path: Path, data: dict[str, Any]) -> None:
    """Write ``data`` to ``path`` atomically, readable by the owner only.

    As Docker does: a symlinked file is written through the link (dotfile managers keep the
    real file elsewhere), and directories it has to create are private (0700).
    """
    path = Path(os.path.realpath(path))
    _private_dirs(path.parent)
    import tempfile  # only a login writes: reading credentials must not pay for it

    fd, tmp = tempfile.mkstemp(prefix=".config-", suffix=".json", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            json.dump(data, f, indent="\t")
            f.write("\n")
        os.chmod(tmp, 0o600)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


def _private_dirs(directory: Path) -> None:
    """Create ``directory`` and any missing parents with mode 0700."""
    missing: list[Path] = []
    while not directory.exists():
        missing.append(directory)
        directory = directory.parent
    for each in reversed(missing):
        with contextlib.suppress(FileExistsError):
            each.mkdir(mode=0o700)


def server_url(registry: str) -> str:
    """What a credential helper is asked about: the host, or Docker Hub's historical URL."""
    return DOCKER_HUB_KEY if registry in _HUB_HOSTS else registry


def lookup_keys(registry: str, repository: str | None = None) -> list[str]:
    """Exact keys to try for a registry, most specific first (``host/ns/repo`` ... ``host``)."""
    keys: list[str] = []
    if repository:
        parts = repository.split("/")
        keys += [f"{registry}/{'/'.join(parts[:i])}" for i in range(len(parts), 0, -1)]
    keys.append(registry)
    if registry in _HUB_HOSTS:
        keys.insert(0, DOCKER_HUB_KEY)
        keys += sorted(_HUB_HOSTS - {registry})
    return keys


def hostname_of_key(key: str) -> str:
    """A config key reduced the way Docker compares it: no scheme, nothing after the host."""
    for scheme in ("https://", "http://"):
        if key.startswith(scheme):
            key = key[len(scheme) :]
            break
    return key.split("/", 1)[0]


def matching_key(
    mapping: dict[str, Any], registry: str, repository: str | None = None
) -> str | None:
    """The key of ``mapping`` that holds ``registry``'s entry: exact first, then by hostname."""
    for key in lookup_keys(registry, repository):
        if key in mapping:
            return key
    wanted = _HUB_HOSTS if registry in _HUB_HOSTS else {registry}
    for key in mapping:
        # A path after a scheme is an API path (".../v1/"), after a bare host a namespace
        # (containers auth.json), which must not match other repositories.
        has_scheme = key.startswith(("https://", "http://"))
        if hostname_of_key(key) in wanted and (has_scheme or "/" not in key):
            return key
    return None
