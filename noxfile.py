"""Developer sessions: ``nox -s tests``, ``lint``, ``typecheck``, ``bench``."""

import nox

nox.options.sessions = ["lint", "typecheck", "tests"]
nox.options.reuse_existing_virtualenvs = True


@nox.session
def tests(session: nox.Session) -> None:
    """The whole test suite (needs the Debian tools that scripts/test.sh installs)."""
    session.install("-e", ".[test]")
    session.run("pytest", "-n", "2", "--dist", "loadgroup", *session.posargs)


@nox.session
def lint(session: nox.Session) -> None:
    """ruff: style and common bugs."""
    session.install("ruff>=0.5")
    session.run("ruff", "check", "ocibuild", "tests", "benchmarks", "plugins")


@nox.session
def typecheck(session: nox.Session) -> None:
    """mypy, strict on the image core."""
    session.install("-e", ".[test]", "mypy>=1.10")
    session.run("mypy", "ocibuild")


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
    session.install("-e", ".", "matplotlib")
    session.run("python", "-m", "benchmarks.run", "--install-fairing", *session.posargs)
    session.run("python", "-m", "benchmarks.deps")
