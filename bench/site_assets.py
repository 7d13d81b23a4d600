"""Self-contained pages: point the rendered site at the vendored KaTeX instead of its CDN.

Both renderers write pages that load KaTeX 0.16.11 from a CDN (``_quarto.yml``
names it for Quarto, and smalldocs 0.5.4 always uses it). After rendering,
``localise_katex`` copies the vendored copy in ``report/vendor/katex`` into
the site and rewrites those addresses as relative paths, so the formulas
render without a network connection and the site can be archived whole.
"""

import logging
import os
import shutil
from pathlib import Path

logger = logging.getLogger(__name__)

KATEX_CDN = "https://cdn.jsdelivr.net/npm/katex@0.16.11/dist/"
VENDORED_KATEX = Path("report") / "vendor" / "katex"


def localise_katex(project_root, site):
    """Copy the vendored KaTeX into ``site`` and make its pages load it; return the number of pages changed."""
    source = Path(project_root) / VENDORED_KATEX
    target = Path(site) / VENDORED_KATEX
    if not (source / "katex.min.js").is_file():
        raise FileNotFoundError(f"{source / 'katex.min.js'} is missing; restore {VENDORED_KATEX} from git.")
    shutil.copytree(source, target, dirs_exist_ok=True)
    changed = 0
    for page in sorted(Path(site).rglob("*.html")):
        text = page.read_text(encoding="utf-8")
        if KATEX_CDN not in text:
            continue
        relative = Path(os.path.relpath(target, page.parent)).as_posix() + "/"
        page.write_text(text.replace(KATEX_CDN, relative), encoding="utf-8")
        changed += 1
    logger.info("pointed %d pages at the vendored KaTeX in %s", changed, target)
    return changed
