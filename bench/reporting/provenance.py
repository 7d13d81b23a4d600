"""The Reproduce page: commands, configuration, versions, machine, date and commit of a stored profile."""

import copy
from collections import Counter

from bench.reporting import tomlwriter
from bench.reporting.markdown import code, escape, pipe_table
from bench.reporting.results import ordered_methods, render_command

NOT_RECORDED = "not recorded"
# provenance.git_commit appends this to the commit when the working tree had uncommitted changes.
DIRTY_SUFFIX = "-dirty"
CONFIG_FILE = "config.toml"


def commit_of(results):
    """Return the manifest's git commit without the dirty suffix, and whether the tree was dirty."""
    commit = results.manifest.get("git_commit") or ""
    dirty = commit.endswith(DIRTY_SUFFIX)
    return commit.removesuffix(DIRTY_SUFFIX) or None, dirty


def config_toml(results):
    """Return the configuration stored in manifest.json as TOML that ``--config`` accepts.

    Its run.methods lists the methods that have stored runs, so that the
    file reruns those: a bench run with --methods computes only some of the
    configured methods, and one may also add others.
    """
    header = (
        f"# The configuration of profile {results.profile!r} as stored with its results in manifest.json.\n"
        "# Passed with --config, it overrides every value of the profile.\n"
    )
    config = copy.deepcopy(results.manifest.get("config", {}))
    configured = config.get("run", {}).get("methods")
    stored = ordered_methods(sorted(set(results.runs["method"])))
    if isinstance(configured, list) and stored and set(stored) != set(configured):
        config["run"]["methods"] = stored
        header += (f"# run.methods lists the methods with stored runs; the bench's configuration listed "
                   f"{', '.join(configured)}.\n")
    return header + tomlwriter.dumps(config)


def commands_section(results, repository_url, config_link):
    """Return the Markdown of the commands that check out the code and run the bench and render again.

    ``config_link`` is the path of config.toml relative to the including page.
    """
    commit, dirty = commit_of(results)
    profile = results.profile
    clone = f"git clone {repository_url} kan-sr-bench" if repository_url else "git clone <this repository's URL> kan-sr-bench"
    lines = [clone, "cd kan-sr-bench"]
    if commit:
        lines.append(f"git checkout {commit}")
    lines += [
        "# Save config.toml from the Downloads page into this folder, then:",
        f"nox -s bench -- --profile {profile} --config {CONFIG_FILE}",
        render_command(profile),
    ]
    parts = ["```bash\n" + "\n".join(lines) + "\n```"]
    if not repository_url:
        parts.append("CITATION.cff names no repository URL, so the clone command above has a placeholder.")
    parts.append(
        f"The bench reuses nothing in a fresh clone, so it computes every run again; [{CONFIG_FILE}]({config_link}) "
        f"holds every value of profile {code(profile)} as it ran, so the command gives the same configuration even if "
        "the profile's defaults change later."
    )
    command = results.manifest.get("command")
    if command:
        parts.append(f"The stored results were written by {code(command)}.")
    if dirty:
        parts.append(
            f"The manifest marks commit {code(commit)} as {code(DIRTY_SUFFIX.lstrip('-'))}: the bench ran from a "
            "working tree with uncommitted changes, so that commit alone may not give the same results."
        )
    elif not commit:
        parts.append("The manifest records no git commit, so the code version is known only from the version table below.")
    return "\n\n".join(parts) + "\n"


def config_section(results):
    """Return the Markdown of the stored configuration as a TOML block."""
    return "```toml\n" + config_toml(results) + "```\n"


def environment_section(results):
    """Return the Markdown of the date, commit, Python, machine and library versions of the stored results."""
    manifest = results.manifest
    machine = manifest.get("machine") or {}
    versions = dict(manifest.get("versions") or {})
    commit = manifest.get("git_commit")
    rows = [
        ["Profile", code(results.profile)],
        ["Runs finished by", escape(results.results_date() or NOT_RECORDED)],
        ["Manifest written", escape(manifest.get("written_at") or NOT_RECORDED)],
        ["Git commit", code(commit) if commit else NOT_RECORDED],
        ["Python", escape(versions.get("python") or NOT_RECORDED)],
        ["CPU", escape(machine.get("cpu") or NOT_RECORDED)],
        ["Cores", _value(machine.get("cores"))],
        ["Operating system", _value(machine.get("system"))],
    ]
    parts = [
        pipe_table(("Item", "Value"), rows, align="ll"),
        f": Provenance of profile {code(results.profile)}, from its manifest.json and runs.csv.",
    ]
    version_rows = [[code(name), code(version)] for name, version in sorted(versions.items())]
    if version_rows:
        parts += [
            pipe_table(("Package", "Version"), version_rows, align="ll"),
            ": Versions recorded with the results; bench is this code's version and a hash of the modules that every method's runs share; each run's record adds its method's own modules to that hash.",
        ]
    parts += _machines_of_runs(results, machine)
    return "\n\n".join(parts) + "\n"


def _machines_of_runs(results, manifest_machine):
    """Say where the runs were computed when that is not only the machine of the manifest.

    A rerun reuses stored runs, which may come from another machine; each
    record keeps the machine that computed it.
    """
    counts = Counter()
    for record in results.records().values():
        machine = record.get("machine") or {}
        counts[(machine.get("cpu"), machine.get("cores"), machine.get("system"))] += 1
    manifest_key = (manifest_machine.get("cpu"), manifest_machine.get("cores"), manifest_machine.get("system"))
    if not counts or set(counts) == {manifest_key}:
        return ["Every run was computed on the machine in the table above."] if counts else []
    rows = [[escape(cpu or NOT_RECORDED), _value(cores), _value(system), str(count)]
            for (cpu, cores, system), count in sorted(counts.items(), key=lambda item: -item[1])]
    return [
        "The runs were computed on more than one machine, as their records say:",
        pipe_table(("CPU", "Cores", "Operating system", "Runs"), rows, align="lrlr"),
    ]


def _value(value):
    return NOT_RECORDED if value is None else escape(value)
