"""Tests of the rendered site: every page from stored results, published bundles, and renders that follow the results."""

import logging
import re
import shutil
import sys

import pytest
import yaml

from bench import render
from bench.errors import NoResultsError
from bench.render import RenderError, build_site, find_results, render_site
from bench.reporting import export_bundle
from test_site_support import PROJECT_ROOT, copy_site_sources, fake_key, make_results

# Every page and glob of pages of the site, as _quarto.yml lists them.
RENDER_LIST = yaml.safe_load((PROJECT_ROOT / "_quarto.yml").read_text(encoding="utf-8"))["project"]["render"]
# The Suite page and the signal pages, written from one template, show a suite of another profile under a
# banner of their own (tests/test_suite.py).
SUITE_PAGE = "report/suite.qmd"
SIGNAL_PAGES = "report/signals/*.qmd"
SIGNAL_TEMPLATE = "report/_signal_template.qmd"
# The pages of the main results, which show the banner of those results.
PAGES = [page for page in RENDER_LIST if page not in (SUITE_PAGE, SIGNAL_PAGES)]
# Lines of a page that may hold digits: its front matter and include shortcodes are not prose.
INCLUDE = re.compile(r"^\{\{< include \S+ >\}\}$")


def html_of(site, page):
    return (site / "_site" / page).with_suffix(".html").read_text(encoding="utf-8")


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    """A copy of the site's sources rendered from fake results."""
    root = copy_site_sources(tmp_path_factory.mktemp("site"))
    results = make_results(root)
    source, _ = build_site(root, "fake", results_dir=results)
    assert source == results
    return root


def prose_lines(page):
    """Yield the lines of a .qmd page outside its front matter, include shortcodes and link targets."""
    text = page.read_text(encoding="utf-8")
    if text.startswith("---\n"):
        text = text.split("\n---\n", 1)[1]
    for line in text.splitlines():
        if not INCLUDE.match(line.strip()):
            yield re.sub(r"\]\([^)]*\)", "]", line)


def test_render_list_has_suite_pages():
    assert SUITE_PAGE in RENDER_LIST
    assert SIGNAL_PAGES in RENDER_LIST


@pytest.mark.parametrize("page", [*PAGES, SUITE_PAGE, SIGNAL_TEMPLATE])
def test_page_has_no_typed_numbers(page):
    lines = [line for line in prose_lines(PROJECT_ROOT / page) if re.search(r"[0-9]", line)]
    assert lines == []


@pytest.mark.parametrize("page", PAGES)
def test_page_includes_banner(page):
    depth = page.count("/")
    expected = "{{< include " + ("report/" if depth == 0 else "") + "_generated/banner.md >}}"
    assert expected in (PROJECT_ROOT / page).read_text(encoding="utf-8")


def test_suite_pages_include_own_banner():
    assert "{{< include _generated/suite_banner.md >}}" in (PROJECT_ROOT / SUITE_PAGE).read_text(encoding="utf-8")
    template = (PROJECT_ROOT / SIGNAL_TEMPLATE).read_text(encoding="utf-8")
    assert "{{< include ../_generated/signals/@SIGNAL@/banner.md >}}" in template


@pytest.mark.slow
@pytest.mark.parametrize("page", PAGES)
def test_rendered_page_complete(site, page):
    html = html_of(site, page)
    assert "{{&lt;" not in html, "an include was not resolved"
    assert "{{<" not in html, "an include was not resolved"
    assert 'class="results-banner"' in html
    assert "Results of profile <code>fake</code>" in html


@pytest.mark.slow
def test_rendered_results_tables(site):
    html = html_of(site, "report/results.qmd")
    table = html.split('id="results-metrics"', 1)[1].split("</table>", 1)[0]
    methods = re.findall(r"<tr[^>]*>\s*<td[^>]*><code>(\w+)</code></td>", table)
    assert methods == ["kan_numeric", "kan_symbolic", "pysr_direct"]
    assert "auto_symbolic found no function | edge (0, 1, 0)" in html
    assert f'href="_generated/downloads/records/{fake_key("kan_numeric", 0)}.json"' in html


@pytest.mark.slow
def test_rendered_noise_page_not_run(site):
    html = html_of(site, "report/noise.qmd")
    assert "The noise sweep has not been run here" in html
    assert "<code>nox -s bench -- --profile noise</code>" in html


@pytest.mark.slow
def test_rendered_pairwise_table(site):
    html = html_of(site, "report/results.qmd")
    assert html.index('id="results-metrics"') < html.index('id="results-pairwise"') < html.index('id="every-run"')
    table = html.split('id="results-pairwise"', 1)[1].split("</table>", 1)[0]
    rows = re.findall(r"<tr[^>]*>(.*?)</tr>", table, re.S)
    cells = [re.sub(r"<[^>]+>", "", cell).strip() for cell in re.findall(r"<td[^>]*>(.*?)</td>", rows[-1], re.S)]
    assert cells == ["kan_numeric", "kan_symbolic", "1", "6.00e-03", "—",
                     "undecided: 1 paired repetition, at least 3 needed"]
    assert "10,000 bootstrap resamples" in html


@pytest.mark.slow
def test_rendered_recovery_table(site):
    html = html_of(site, "report/formulas.qmd")
    assert html.index('id="formulas-recovery"') < html.index("Fitted and true terms of every judged run") < html.index(
        "True formula, size")
    table = html.split('id="formulas-recovery"', 1)[1].split("</table>", 1)[0]
    rows = re.findall(r"<tr[^>]*>(.*?)</tr>", table, re.S)
    cells = [[re.sub(r"<[^>]+>", "", cell).strip() for cell in re.findall(r"<td[^>]*>(.*?)</td>", row, re.S)] for row in rows]
    assert [row for row in cells if row] == [
        ["kan_symbolic", "1 of 2", "1 exact, 0 almost, 0 missed of 1", "0 exact, 0 almost, 1 missed of 1",
         "0 exact, 0 almost, 1 missed of 1", "0 of 1"],
        ["pysr_direct", "0 of 2", "—", "—", "—", "—"],
    ]
    assert "{.callout" not in html
    assert "Nyquist limit of 100 Hz" in html


@pytest.mark.slow
def test_rendered_files_copied(site):
    generated = site / "_site" / "report" / "_generated"
    for name in ("figures/zoom.svg", "downloads/runs.csv", "downloads/runs.parquet", "downloads/results.zip",
                 "downloads/config.toml", f"downloads/records/{fake_key('pysr_direct', 1)}.json"):
        assert (generated / name).is_file(), name
    figures = html_of(site, "report/figures.qmd")
    assert 'src="_generated/figures/test_mse_per_seed.svg"' in figures
    assert re.search(r'<img[^>]+alt="Dot plot of test MSE', figures)


def test_render_without_project_raises(tmp_path):
    with pytest.raises(RenderError, match="_quarto.yml not found"):
        render_site(tmp_path)


@pytest.mark.slow
def test_render_failure_names_command(tmp_path):
    (tmp_path / "_quarto.yml").write_text("project:\n  type: website\nformat:\n  html:\n    theme: no-such-theme\n")
    (tmp_path / "index.qmd").write_text("# Index\n")
    with pytest.raises(RenderError, match=r"render.* failed with exit code [1-9]"):
        render_site(tmp_path)


def test_expected_renderer_warning_is_info(tmp_path, caplog):
    script = "print('warning: format.html.html-math-method is ignored'); print('warning: unknown key')"
    with caplog.at_level(logging.INFO, logger="bench.render"):
        render._run([sys.executable, "-c", script], tmp_path)
    levels = {record.getMessage().split(" (")[0]: record.levelno for record in caplog.records
              if record.getMessage().startswith("warning:")}
    assert levels["warning: format.html.html-math-method is ignored"] == logging.INFO
    assert levels["warning: unknown key"] == logging.WARNING


def test_render_keeps_foreign_output_folder(tmp_path):
    (tmp_path / "_quarto.yml").write_text("project:\n  type: website\n")
    (tmp_path / "_site").mkdir()
    (tmp_path / "_site" / "notes.txt").write_text("kept")
    with pytest.raises(RenderError, match="is not a rendered site"):
        render_site(tmp_path)
    assert (tmp_path / "_site" / "notes.txt").read_text() == "kept"


# Choosing the results.


def test_find_results_prefers_local(tmp_path):
    local = make_results(tmp_path, profile="quick")
    export_bundle(local, tmp_path / "published" / "quick")
    assert find_results(tmp_path, "quick") == local


def test_find_results_falls_back_to_bundle(tmp_path):
    results = make_results(tmp_path / "elsewhere", profile="quick")
    bundle = export_bundle(results, tmp_path / "published" / "quick").directory
    assert find_results(tmp_path, "quick") == bundle


def test_find_results_explicit_folder(tmp_path):
    assert find_results(tmp_path, "quick", tmp_path / "mine") == tmp_path / "mine"


def test_find_results_none_raises(tmp_path):
    with pytest.raises(NoResultsError, match=r"results/default/runs\.csv and .*published/default/bundle\.json"):
        find_results(tmp_path, "default")


# Renders that follow the results.


@pytest.mark.slow
def test_clean_clone_renders_from_bundle(tmp_path):
    results = make_results(tmp_path / "bench", profile="quick")
    clone = copy_site_sources(tmp_path / "clone")
    export_bundle(results, clone / "published" / "quick")

    source, _ = build_site(clone, "quick")

    assert source == clone / "published" / "quick"
    for page in PAGES:
        assert "Results of profile <code>quick</code>" in html_of(clone, page), page
    assert (clone / "_site" / "report" / "_generated" / "figures" / "zoom.svg").is_file()


@pytest.mark.slow
def test_changed_results_change_pages(tmp_path):
    clone = copy_site_sources(tmp_path / "clone")
    results = make_results(clone)
    build_site(clone, "fake", results_dir=results)
    assert "fit_kan_symbolic.svg" in html_of(clone, "report/figures.qmd")

    fewer = make_results(tmp_path / "fewer", methods=("kan_numeric", "pysr_direct"))
    shutil.rmtree(results)
    shutil.copytree(fewer, results)
    build_site(clone, "fake", results_dir=results)

    figures = html_of(clone, "report/figures.qmd")
    assert "fit_kan_symbolic.svg" not in figures
    assert not (clone / "_site" / "report" / "_generated" / "figures" / "fit_kan_symbolic.svg").exists()
    assert "kan_symbolic" not in html_of(clone, "report/results.qmd")


def test_failed_render_keeps_previous_site(tmp_path):
    root = copy_site_sources(tmp_path)
    results = make_results(root)
    build_site(root, "fake", results_dir=results)
    before = html_of(root, "index.qmd")

    with (root / "_quarto.yml").open("a", encoding="utf-8") as stream:
        stream.write("project: [\n")
    with pytest.raises(RenderError):
        render_site(root)
    assert html_of(root, "index.qmd") == before
    assert not (root / "._site.previous").exists()


def folder_bytes(folder):
    return {str(path.relative_to(folder)): path.read_bytes() for path in sorted(folder.rglob("*")) if path.is_file()}


def test_failed_render_keeps_previous_report(tmp_path):
    root = copy_site_sources(tmp_path / "root")
    build_site(root, "fake", results_dir=make_results(root))
    generated = folder_bytes(root / "report" / "_generated")

    fewer = make_results(tmp_path / "fewer", methods=("kan_numeric", "pysr_direct"))
    with (root / "_quarto.yml").open("a", encoding="utf-8") as stream:
        stream.write("project: [\n")
    with pytest.raises(RenderError):
        build_site(root, "fake", results_dir=fewer)
    assert folder_bytes(root / "report" / "_generated") == generated
