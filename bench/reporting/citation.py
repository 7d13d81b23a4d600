"""A BibTeX entry for the benchmark and its results, built from the repository's CITATION.cff."""

import re
from pathlib import Path

from bench.errors import DataError

CITATION_FILE = "CITATION.cff"
# Characters that BibTeX or LaTeX read as commands, and their escaped forms.
_LATEX_SPECIAL = {"\\": r"\textbackslash{}", "{": r"\{", "}": r"\}", "&": r"\&", "%": r"\%", "$": r"\$",
                  "#": r"\#", "_": r"\_", "~": r"\textasciitilde{}", "^": r"\textasciicircum{}"}


def read_citation(path):
    """Read the Citation File Format file at ``path`` and return its fields as a dict.

    Raises DataError when the file is not YAML or lacks the fields that
    every CITATION.cff has: cff-version, message, title and authors.
    """
    import yaml  # smalldocs depends on PyYAML, so the render environment has it.

    path = Path(path)
    try:
        citation = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as error:
        raise DataError(f"{path} is not valid YAML: {error}") from error
    missing = [key for key in ("cff-version", "message", "title", "authors") if not (citation or {}).get(key)]
    if missing:
        raise DataError(f"{path} lacks the fields {missing}, which the Citation File Format requires.")
    return citation


def bibtex_entry(citation, profile, commit, results_date):
    """Return a BibTeX ``@software`` entry for ``citation`` that names the results' profile, commit and date.

    The year is the year of ``results_date`` (YYYY-MM-DD), because the entry
    cites these results. Authors that are people read "Family, Given";
    organisations are braced so that BibTeX keeps their name whole.
    """
    fields = [
        ("author", " and ".join(_author(author) for author in citation["authors"])),
        ("title", _latex(citation["title"])),
    ]
    if citation.get("version") is not None:
        fields.append(("version", _latex(citation["version"])))
    if results_date:
        fields.append(("year", results_date[:4]))
    url = citation.get("repository-code") or citation.get("url")
    if url:
        fields.append(("url", url))
    if citation.get("doi"):
        fields.append(("doi", citation["doi"]))
    note = f"Results of profile {profile}"
    if commit:
        note += f", code commit {commit}"
    if results_date:
        note += f", runs finished by {results_date}"
    fields.append(("note", _latex(note)))

    key = re.sub(r"[^A-Za-z0-9]+", "_", str(citation["title"]).split(":")[0]).strip("_").lower() or "benchmark"
    if results_date:
        key += f"_{results_date[:4]}"
    body = ",\n".join(f"  {name} = {{{value}}}" for name, value in fields)
    return f"@software{{{key},\n{body}\n}}\n"


def citation_section(citation, profile, commit, results_date):
    """Return the Markdown of the BibTeX entry, after a sentence that names CITATION.cff as its source."""
    entry = bibtex_entry(citation, profile, commit, results_date)
    return (
        f"The repository's {CITATION_FILE} describes the benchmark in the Citation File Format, which GitHub "
        "shows as \"Cite this repository\". To cite these results in LaTeX:\n\n"
        f"```bibtex\n{entry}```\n"
    )


def _author(author):
    if author.get("family-names"):
        given_names = author.get("given-names")
        particle = author.get("name-particle")
        family = " ".join(part for part in (particle, author["family-names"]) if part)
        return _latex(f"{family}, {given_names}" if given_names else family)
    if author.get("name"):
        return "{" + _latex(author["name"]) + "}"
    raise DataError(f"a CITATION.cff author has neither family-names nor name: {author!r}")


def _latex(text):
    return "".join(_LATEX_SPECIAL.get(character, character) for character in str(text))
