"""The rendered site in headless Chromium: images, links, the results table, KaTeX and the console, page by page.

The site is rendered once from fake results and served from 127.0.0.1 by a
server that the tests start. The pages load the KaTeX copy that rendering
puts into the site, so every request that does not go to the local server
is aborted and reported: the formulas must render offline.

Chromium comes from Debian's ``chromium`` package. Without it, the tests
skip locally and fail under CI (where the CI variable is set), because
.ci/run installs it.
"""

import functools
import http.server
import os
import shutil
import threading
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urldefrag, urlsplit

import pytest

from bench.render import build_site
from test_site_support import DEFAULT_METHODS, copy_site_sources, make_results

pytestmark = [pytest.mark.browser, pytest.mark.slow]

KATEX_VERSION = "0.16.11"
# Flags known to start Debian's Chromium headless as root in a container, without background traffic.
CHROMIUM_FLAGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking",
    "--disable-component-update", "--disable-sync",
]  # fmt: skip
PAGES = ("index", "report/method", "report/results", "report/formulas", "report/figures", "report/noise",
         "report/suite", "report/signals/seed", "report/reproduce", "report/downloads")  # fmt: skip
# Formulas of the fake results: the true formula once on the Overview, once on the Method page, and on the
# Formulas page once per symbolic method (kan_symbolic, pysr_direct) plus kan_symbolic's one ok formula.
# The seed signal's page of the fake suite shows the Formulas page's three and the true formula above them.
EXPECTED_FORMULAS = {"index": 1, "report/method": 1, "report/formulas": 3, "report/signals/seed": 4}
SCREENSHOTS_VARIABLE = "SITE_SCREENSHOTS"


def require(condition, reason):
    """Skip the test when ``condition`` is false, or fail under CI, which must provide what it needs."""
    if condition:
        return
    if os.environ.get("CI"):
        pytest.fail(f"{reason}; CI must provide it, and .ci/run installs it")
    pytest.skip(reason)


@dataclass
class Visit:
    """The console errors, failed requests, images, links, ids, math and metrics rows that the browser found on one page."""

    console_errors: list = field(default_factory=list)
    failed_requests: list = field(default_factory=list)
    images: list = field(default_factory=list)
    links: list = field(default_factory=list)
    ids: set = field(default_factory=set)
    math_total: int = 0
    math_rendered: int = 0
    katex_errors: int = 0
    formulas: int = 0
    katex_version: str | None = None
    metrics_methods: list = field(default_factory=list)


@pytest.fixture(scope="module")
def chromium():
    path = os.environ.get("CHROMIUM") or shutil.which("chromium") or shutil.which("chromium-browser")
    require(path, "no Chromium executable: install Debian's chromium package (apt-get install chromium)")
    return path


@pytest.fixture(scope="module")
def site_url(tmp_path_factory):
    """The base URL of the site rendered from fake results, served from 127.0.0.1 for the module's tests."""
    root = copy_site_sources(tmp_path_factory.mktemp("site"))
    # A suite of the quick profile with the seed signal alone, which gets the Suite page a signal page to link.
    make_results(root, profile="quick")
    build_site(root, "fake", results_dir=make_results(root))

    class QuietHandler(http.server.SimpleHTTPRequestHandler):
        def log_message(self, *args):
            pass

    handler = functools.partial(QuietHandler, directory=str(root / "_site"))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/"
    server.shutdown()
    server.server_close()
    thread.join(timeout=10)


@pytest.fixture(scope="module")
def screenshots(tmp_path_factory):
    """The folder for one full-page screenshot per page: $SITE_SCREENSHOTS, or a folder of pytest's."""
    chosen = os.environ.get(SCREENSHOTS_VARIABLE)
    folder = Path(chosen) if chosen else tmp_path_factory.mktemp("screenshots")
    folder.mkdir(parents=True, exist_ok=True)
    return folder


@pytest.fixture(scope="module")
def visits(chromium, site_url, screenshots):
    """Load every page once in headless Chromium.

    Returns what the browser saw on each page, keyed by page, and the
    requests to other hosts, which were aborted.
    """
    from playwright.sync_api import sync_playwright

    external = []

    def route(request_route):
        url = request_route.request.url
        if url.startswith(site_url):
            request_route.continue_()
            return
        external.append(url)
        request_route.abort()

    results = {}
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=chromium, args=CHROMIUM_FLAGS, headless=True)
        try:
            page = browser.new_page(viewport={"width": 1280, "height": 900})
            page.route("**/*", route)
            for name in PAGES:
                results[name] = _visit(page, site_url + name + ".html", screenshots / f"{name.replace('/', '_')}.png")
        finally:
            browser.close()
    return results, external


def _visit(page, url, screenshot):
    visit = Visit()
    listeners = {
        "console": lambda message: visit.console_errors.append(message.text) if message.type == "error" else None,
        "pageerror": lambda error: visit.console_errors.append(f"uncaught: {error}"),
        "requestfailed": lambda request: visit.failed_requests.append(f"{request.url}: {request.failure}"),
        "response": lambda response: visit.failed_requests.append(f"{response.url}: HTTP {response.status}")
        if response.status >= 400 else None,
    }
    for event, listener in listeners.items():
        page.on(event, listener)
    page.goto(url, wait_until="networkidle")

    visit.images = page.eval_on_selector_all(
        "img", "images => images.map(i => ({src: i.currentSrc, alt: i.alt, ok: i.complete && i.naturalWidth > 0}))"
    )
    visit.links = page.eval_on_selector_all("a[href]", "links => links.map(a => a.href)")
    visit.ids = set(page.eval_on_selector_all("[id]", "nodes => nodes.map(n => n.id)"))
    visit.math_total = page.locator("span.math").count()
    visit.math_rendered = page.locator("span.math:has(.katex)").count()
    visit.katex_errors = page.locator(".katex-error").count()
    visit.formulas = page.locator(".formula .katex-display").count()
    visit.katex_version = page.evaluate("window.katex ? window.katex.version : null")
    visit.metrics_methods = page.eval_on_selector_all(
        "#results-metrics table tbody tr", "rows => rows.map(r => r.querySelector('td').textContent.trim())"
    )
    page.screenshot(path=str(screenshot), full_page=True)

    for event, listener in listeners.items():
        page.remove_listener(event, listener)
    return visit


@pytest.mark.parametrize("name", PAGES)
def test_page_console_clean(visits, name):
    visit = visits[0][name]
    assert visit.console_errors == []
    assert visit.failed_requests == []


@pytest.mark.parametrize("name", PAGES)
def test_page_images_load(visits, name):
    for image in visits[0][name].images:
        assert image["ok"], f"broken image {image['src']}"
        assert image["alt"].strip(), f"image without alt text: {image['src']}"


def test_figures_page_shows_figures(visits):
    sources = [Path(urlsplit(image["src"]).path).name for image in visits[0]["report/figures"].images]
    assert {"target.svg", "zoom.svg", "residuals.svg", "test_mse_per_seed.svg", "fit_kan_numeric.svg"} <= set(sources)


def test_signal_page_shows_figure(visits):
    images = visits[0]["report/signals/seed"].images
    assert [Path(urlsplit(image["src"]).path).name for image in images] == ["signal.svg"]
    assert images[0]["ok"]


def test_links_resolve(visits, site_url):
    from playwright.sync_api import sync_playwright

    pages, external = visits[0], []
    local = {}
    for name, visit in pages.items():
        for link in visit.links:
            target, fragment = urldefrag(link)
            if link.startswith(site_url):
                local.setdefault(target, set()).add((name, fragment))
            elif urlsplit(link).scheme in ("http", "https"):
                external.append(link)

    with sync_playwright() as playwright:
        request = playwright.request.new_context()
        try:
            for target, sources in sorted(local.items()):
                response = request.get(target)
                assert response.status == 200, f"{target}, linked from {sorted(sources)}: HTTP {response.status}"
                body = response.text() if target.endswith(".html") else ""
                for source, fragment in sources:
                    if fragment and body:
                        assert f'id="{fragment}"' in body, f"{source} links to {target}#{fragment}, which has no such id"
        finally:
            request.dispose()
    # The site links to no other host. This machine is offline, so a link to another host must be checked by hand.
    assert external == []


def test_results_table_one_row_per_method(visits):
    assert visits[0]["report/results"].metrics_methods == list(DEFAULT_METHODS)


@pytest.mark.parametrize("name", PAGES)
def test_formulas_render_with_katex(visits, name):
    visit = visits[0][name]
    assert visit.katex_errors == 0
    assert visit.math_rendered == visit.math_total
    assert visit.formulas == EXPECTED_FORMULAS.get(name, 0)
    if visit.math_total:
        assert visit.katex_version == KATEX_VERSION


def test_no_other_hosts_requested(visits):
    _, external = visits
    assert external == []


def test_screenshot_of_every_page(visits, screenshots):
    for name in PAGES:
        path = screenshots / f"{name.replace('/', '_')}.png"
        assert path.read_bytes().startswith(b"\x89PNG"), path
