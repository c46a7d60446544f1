"""Sphinx extension: the book serves its own web assets, so a reader needs no CDN.

* Copies MathJax 3 (``mathjax`` from npm) into ``_static/mathjax`` of the built site;
  ``_config.yml`` points ``mathjax_path`` at it.
* Copies Font Awesome 4 (``font-awesome`` from npm) into ``_static/font-awesome`` and
  rewrites the stylesheet link that matplotlib's ``Animation.to_jshtml`` player puts in
  the page (a CDN address) to that copy.
* Serves the course's convolution explorer (``web/explorer/``: ``conv-explorer-core.js``,
  ``conv-explorer.js`` and ``.css``, no dependency) from ``_static/explorer`` and loads it
  on the pages that embed one (``<div class="conv-explorer">`` in a raw HTML block).
* Drops the duplicate inline configuration script of sphinx-thebe (a console error).
* Makes the jshtml player accessible when its author did not: a fallback ``alt`` on the
  frame ``<img>`` (``conv_lib.animation_html`` sets a real one) and a label on the frame
  slider; and fixes two accessibility faults of myst-nb's and docutils' markup (see
  ``_patch_page``).

The npm packages are installed by ``npm ci`` in ``web/`` (``make web``, part of
``make book``); without them the build stops with that advice.
"""

from __future__ import annotations

import re
import shutil
from pathlib import Path

from sphinx.application import Sphinx
from sphinx.errors import ExtensionError

NODE_MODULES = Path(__file__).resolve().parent / "node_modules"
EXPLORER = Path(__file__).resolve().parent / "explorer"
EXPLORER_FILES = ("conv-explorer-core.js", "conv-explorer.js", "conv-explorer.css")

# What goes into the site: (package folder, sub-folder to copy, destination under _static).
_ASSETS = [
    ("mathjax", "es5", "mathjax"),
    ("font-awesome", "css", "font-awesome/css"),
    ("font-awesome", "fonts", "font-awesome/fonts"),
]
# MathJax's combined builds other than the one mathjax_path names are not needed.
_MATHJAX_SKIP = {
    "tex-chtml-full-speech.js", "tex-chtml-full.js", "tex-chtml.js", "tex-svg-full.js", "tex-svg.js",
    "mml-chtml.js", "mml-svg.js", "tex-mml-svg.js", "node-main.js", "latest.js",
}

_FA_CDN = re.compile(r"https?://[^\"'\s]+/font-awesome/[0-9.]+/css/font-awesome(?:\.min)?\.css")
_ANIM_IMG = re.compile(r"<img (?![^>]*\balt=)(id=\"_anim_img\w+\")")
_ANIM_SLIDER = re.compile(r"<input (?![^>]*\baria-label=)(id=\"_anim_slider\w+\")")


def _check_installed(app: Sphinx) -> None:
    if app.builder.format != "html":
        return
    for package, sub, _dest in _ASSETS:
        if not (NODE_MODULES / package / sub).is_dir():
            raise ExtensionError(
                f"web asset {package}/{sub} is missing from {NODE_MODULES}: "
                "run `make web` (npm ci in web/) before building the book"
            )


def _copy_explorer(app: Sphinx) -> None:
    """The explorer's files go in before the pages are written, so that their links carry
    Sphinx's ``?v=`` checksum (a changed file is not taken from a browser's cache)."""
    if app.builder.format != "html":
        return
    dest = Path(app.outdir) / "_static" / "explorer"
    dest.mkdir(parents=True, exist_ok=True)
    for name in EXPLORER_FILES:
        shutil.copy2(EXPLORER / name, dest / name)


def _dedupe_scripts(context: dict) -> None:
    """Drop repeated inline scripts: sphinx-thebe adds its configuration twice under
    jupyter-book, and the second ``const THEBE_JS_URL`` is a JavaScript error."""
    seen, unique = set(), []
    for js in context.get("script_files", []):
        key = (getattr(js, "filename", js) or None, tuple(sorted(getattr(js, "attributes", {}).items())))
        if key not in seen:
            seen.add(key)
            unique.append(js)
    context["script_files"][:] = unique  # the builder's own list, reset for every page


def _patch_page(app: Sphinx, pagename: str, templatename: str, context: dict, doctree) -> None:
    body = context.get("body")
    if not body:
        return
    # Accessibility (axe-core, tests/test_website.py): myst-nb names the summary of a hidden
    # cell "Toggle hidden content" while it shows "Show code cell source" (rule
    # label-content-name-mismatch): let the visible text be its name.
    body = body.replace('<summary aria-label="Toggle hidden content">', "<summary>")
    # docutils' citation list (role="list") holds role="doc-biblioentry" items, deprecated in
    # ARIA 1.2 and not list items (rule aria-required-children): make them list items.
    body = body.replace('role="doc-biblioentry"', 'role="listitem"')
    if 'class="conv-explorer"' in body:  # this page only (Sphinx >= 3.5 adds to the page in progress)
        app.add_js_file("explorer/conv-explorer-core.js")  # the numbers, then the page
        app.add_js_file("explorer/conv-explorer.js")
        app.add_css_file("explorer/conv-explorer.css")
    if "_anim_img" in body:  # matplotlib's jshtml player
        local_fa = context["pathto"]("_static/font-awesome/css/font-awesome.min.css", 1)
        body = _FA_CDN.sub(local_fa, body)
        body = _ANIM_IMG.sub(r'<img alt="Animation frame (use the player controls below)" \1', body)
        body = _ANIM_SLIDER.sub(r'<input aria-label="Animation frame" \1', body)
    context["body"] = body


def _copy_assets(app: Sphinx, exception: Exception | None) -> None:
    if exception is not None or app.builder.format != "html":
        return
    static = Path(app.outdir) / "_static"
    for package, sub, dest in _ASSETS:
        src = NODE_MODULES / package / sub
        ignore = shutil.ignore_patterns(*_MATHJAX_SKIP) if package == "mathjax" else None
        shutil.copytree(src, static / dest, ignore=ignore, dirs_exist_ok=True)


def setup(app: Sphinx) -> dict:
    app.connect("builder-inited", _check_installed)
    app.connect("builder-inited", _copy_explorer)
    app.connect("html-page-context", _patch_page)
    # After the other extensions' handlers, which may add scripts to the page.
    app.connect("html-page-context", lambda app, pagename, templatename, context, doctree:
                _dedupe_scripts(context), priority=900)
    app.connect("build-finished", _copy_assets)
    return {"version": "1.0", "parallel_read_safe": True, "parallel_write_safe": True}
