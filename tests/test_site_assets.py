"""The vendored KaTeX: copied into the site, and every page that used the CDN points at the copy."""

import shutil
from pathlib import Path

import pytest

from bench.site_assets import KATEX_CDN, VENDORED_KATEX, localise_katex

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture
def project(tmp_path):
    shutil.copytree(ROOT / VENDORED_KATEX, tmp_path / VENDORED_KATEX)
    site = tmp_path / "_site"
    (site / "report").mkdir(parents=True)
    (site / "index.html").write_text(f'<script src="{KATEX_CDN}katex.min.js"></script>')
    (site / "report" / "formulas.html").write_text(f'<link href="{KATEX_CDN}katex.min.css">'
                                                  f'<script src="{KATEX_CDN}contrib/auto-render.min.js">')
    (site / "report" / "plain.html").write_text("<p>no math</p>")
    return tmp_path, site


def test_pages_point_at_vendored_copy(project):
    root, site = project
    assert localise_katex(root, site) == 2
    assert (site / "index.html").read_text() == '<script src="report/vendor/katex/katex.min.js"></script>'
    nested = (site / "report" / "formulas.html").read_text()
    assert 'href="vendor/katex/katex.min.css"' in nested
    assert 'src="vendor/katex/contrib/auto-render.min.js"' in nested


def test_every_referenced_file_copied(project):
    root, site = project
    localise_katex(root, site)
    for name in ("katex.min.js", "katex.min.css", "contrib/auto-render.min.js", "LICENSE"):
        assert (site / VENDORED_KATEX / name).is_file()


def test_vendored_css_fonts_present():
    css = (ROOT / VENDORED_KATEX / "katex.min.css").read_text()
    fonts = {part.split(")")[0] for part in css.split("url(")[1:] if part.split(")")[0].endswith(".woff2")}
    assert len(fonts) == 20
    for font in fonts:
        assert (ROOT / VENDORED_KATEX / font).is_file()


def test_missing_copy_named(project):
    root, site = project
    shutil.rmtree(root / VENDORED_KATEX)
    with pytest.raises(FileNotFoundError, match="katex.min.js is missing"):
        localise_katex(root, site)
