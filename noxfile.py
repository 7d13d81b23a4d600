"""Sessions: ``nox -s bench render`` runs the benchmark and builds the site; ``nox -s test`` runs the tests."""

import nox

nox.options.sessions = ["test"]
nox.options.reuse_venv = "yes"
nox.options.default_venv_backend = "venv"


@nox.session
def bench(session):
    """Run every method over the profile's repetitions, reusing stored runs (pass options after --)."""
    session.install("-e", ".[methods,distributed]")
    session.run("python", "-m", "bench", "run", *session.posargs)


@nox.session
def render(session):
    """Write the report from stored runs and render the site into _site/ (pass --profile after --)."""
    session.install("-e", ".[render]")
    session.run("python", "-m", "bench", "render", *session.posargs)


@nox.session
def publish(session):
    """Copy a profile's stored runs and figures into published/<profile>/ for committing (pass --profile after --)."""
    session.install("-e", ".[render]")
    session.run("python", "-m", "bench", "publish", *session.posargs)


@nox.session
def perf(session):
    """Time stock pykan against the fast spline path and one default-profile KAN run (not part of test)."""
    session.install("-e", ".[methods]")
    session.run("python", "-m", "bench", "perf", *session.posargs)


@nox.session
def test(session):
    """Run the test suite (pass pytest options after --)."""
    session.install("-e", ".[methods,render,test]")
    session.run("python", "-m", "pytest", *session.posargs)
