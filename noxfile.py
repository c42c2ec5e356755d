"""Developer sessions: ``nox -s tests``, ``lint``, ``typecheck``, ``bench``."""

from pathlib import Path

import nox

# What ruff reads; a top-level plugins/ folder joins in when there is one.
LINTED = [
    p for p in ("ocibuild", "tests", "benchmarks", "plugins", "noxfile.py") if Path(p).exists()
]

nox.options.sessions = ["lint", "typecheck", "tests"]
nox.options.reuse_existing_virtualenvs = True


@nox.session
def tests(session: nox.Session) -> None:
    """The whole test suite (needs the Debian tools that scripts/test.sh installs)."""
    session.install("-e", ".[test]")
    session.run("pytest", "-n", "2", "--dist", "loadgroup", *session.posargs)


@nox.session
def lint(session: nox.Session) -> None:
    """ruff (style, common bugs, formatting) and the import contracts between the floors."""
    # The test extra pins the checkers' versions; lint-imports needs ocibuild importable.
    session.install("-e", ".[test]")
    session.run("ruff", "check", *LINTED)
    session.run("ruff", "format", "--check", *LINTED)
    session.run("lint-imports")


@nox.session
def typecheck(session: nox.Session) -> None:
    """mypy, strict on the package and the tests (the settings are in pyproject.toml)."""
    session.install("-e", ".[test]")
    session.run("mypy")


@nox.session
def bench(session: nox.Session) -> None:
    """The side-by-side benchmark suite (see benchmarks/README.md); installs what it needs."""
    session.run(
        "./scripts/ensure-tools.sh",
        "docker-registry=docker-registry",
        "skopeo=skopeo",
        "umoci=umoci",
        "curl=curl",
        "tar=tar",
        "/usr/bin/time=time",
        external=True,
    )
    # The test extra: benchmarks.deploy starts tests.support's cluster with the official client.
    session.install("-e", ".[test]", "matplotlib")
    session.run("python", "-m", "benchmarks.run", "--install-fairing", *session.posargs)
    session.run("python", "-m", "benchmarks.deps")
    # Needs the Kubernetes test bed built (scripts/kube-tools.sh); --quick passes through.
    quick = [a for a in session.posargs if a == "--quick"]
    session.run("python", "-m", "benchmarks.deploy", *quick)
