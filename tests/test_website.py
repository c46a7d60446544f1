"""The website as a reader meets it: the built book served over HTTP, opened in Chromium.

One headless Chromium (Debian's ``/usr/bin/chromium``, driven by Playwright for Python) is
shared by the whole session. Every request that would leave the loopback interface is
blocked and recorded, so the site is checked as it works with no network at all.

Needs: ``make test`` (or ``make browser web`` and a built book). ``BOOK_HTML`` points at
another build; ``CHROMIUM`` at another browser binary. Screenshots are written to
``test-artifacts/``.
"""

from __future__ import annotations

import base64
import functools
import io
import json
import re
import urllib.error
import urllib.request
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import unquote, urldefrag, urlparse

import pytest
import yaml
from site_browser import AXE_JS, CHROMIUM, CHROMIUM_ARGS, Offline  # noqa: F401 (re-exported)

ROOT = Path(__file__).resolve().parents[1]
ARTIFACTS = ROOT / "test-artifacts"
DESKTOP = {"width": 1280, "height": 800}
PHONE = {"width": 390, "height": 844}
ANIMATION_CHAPTER = "chapters/step_by_step"
SCREENSHOT_CHAPTER = "chapters/step_by_step"
SOLUTION_MARKERS = ("### BEGIN SOLUTION", "BEGIN HIDDEN TESTS")

pytestmark = pytest.mark.slow


# --- the table of contents -------------------------------------------------------------

def _toc() -> dict:
    return yaml.safe_load((ROOT / "_toc.yml").read_text(encoding="utf-8"))


def _docname(entry: dict) -> str:
    return re.sub(r"\.(md|ipynb|rst)$", "", entry["file"])


def _entries(items: list[dict]) -> list[str]:
    out: list[str] = []
    for item in items or []:
        if "file" in item:
            out.append(_docname(item))
        out += _entries(item.get("sections", []))
    return out


def toc_pages() -> list[str]:
    """Every page of the book, in reading order (the root first)."""
    toc = _toc()
    pages = [toc["root"]]
    for part in toc.get("parts", []):
        pages += _entries(part.get("chapters", []))
    pages += _entries(toc.get("chapters", []))
    return pages


def toc_part(caption: str) -> list[str]:
    return [doc for part in _toc().get("parts", []) if part.get("caption") == caption
            for doc in _entries(part.get("chapters", []))]


PAGES = toc_pages()
# Every page a reader can reach: the book's, and the pages Sphinx adds.
SITE_PAGES = [*PAGES, "search", "genindex"]
ASSIGNMENTS = toc_part("Assignments")


# --- serving and browsing ----------------------------------------------------------------

# base_url, browser and new_context: session fixtures of tests/conftest.py (one Chromium for all
# the browser tests of a session: Playwright's sync API runs one instance per thread).


@pytest.fixture(scope="session")
def desktop(new_context):
    return new_context(viewport=DESKTOP, accept_downloads=True)


def page_url(base: str, docname: str) -> str:
    return f"{base}{docname}.html"


def wait_for_math(page) -> None:
    """Wait until MathJax (if the page loads it) has typeset the page."""
    if page.evaluate("() => document.querySelector('script[src*=\"mathjax\"]') !== null"):
        page.wait_for_function("() => window.MathJax && MathJax.startup && MathJax.startup.promise",
                               timeout=20_000)
        page.evaluate("() => MathJax.startup.promise.then(() => true)")


@dataclass
class PageReport:
    """What one visit of a page showed (recorded once, checked by several tests)."""

    url: str
    status: int | None = None
    console_errors: list[str] = field(default_factory=list)
    failed_responses: list[str] = field(default_factory=list)
    offsite: list[str] = field(default_factory=list)
    refs: list[str] = field(default_factory=list)
    images: list[dict] = field(default_factory=list)
    axe: list[dict] = field(default_factory=list)
    math: dict = field(default_factory=dict)
    launch: list[str] = field(default_factory=list)
    text: str = ""


def visit(ctx, url: str, *, axe: bool = True) -> PageReport:
    report = PageReport(url)
    page = ctx.new_page()
    start = len(ctx.offline_guard.blocked)
    page.on("console", lambda m: m.type == "error" and report.console_errors.append(
        f"{m.text} ({m.location.get('url', '')})"))
    page.on("pageerror", lambda e: report.console_errors.append(f"uncaught: {e}"))
    page.on("response", lambda r: r.status >= 400 and report.failed_responses.append(
        f"{r.status} {r.url}"))
    try:
        response = page.goto(url, wait_until="load")
        report.status = response.status if response else None
        wait_for_math(page)
        page.wait_for_load_state("networkidle")
        report.refs = page.evaluate("""() => [
            ...Array.from(document.querySelectorAll('a[href]'), a => a.href),
            ...Array.from(document.querySelectorAll('img[src]'), i => i.src),
            ...Array.from(document.querySelectorAll('link[href]'), l => l.href),
            ...Array.from(document.querySelectorAll('script[src]'), s => s.src),
        ]""")
        report.images = page.evaluate("""() => Array.from(document.querySelectorAll('img'), i => ({
            src: (i.getAttribute('src') || '').slice(0, 120), alt: i.getAttribute('alt'),
            id: i.id, complete: i.complete, width: i.naturalWidth}))""")
        report.math = page.evaluate("""() => ({
            sources: document.querySelectorAll('.math').length,
            typeset: document.querySelectorAll('mjx-container').length,
            errors: Array.from(document.querySelectorAll('mjx-merror'), e => e.textContent),
            script: (document.querySelector('script[src*="mathjax"]') || {}).src || null})""")
        report.launch = page.eval_on_selector_all(".dropdown-launch-buttons a", "as => as.map(a => a.href)")
        report.text = page.inner_text("main")
        if axe:
            page.add_script_tag(path=str(AXE_JS))
            result = page.evaluate("() => axe.run(document, {resultTypes: ['violations']})")
            report.axe = [
                {"id": v["id"], "impact": v["impact"], "help": v["help"],
                 "nodes": [n["target"] for n in v["nodes"]][:5]}
                for v in result["violations"]
            ]
    finally:
        page.close()
    report.offsite = ctx.offline_guard.blocked[start:]
    return report


@pytest.fixture(scope="session")
def reports(desktop, base_url):
    """Each page of the book visited once on the desktop; PageReport by docname."""
    cache: dict[str, PageReport] = {}

    def get(docname: str) -> PageReport:
        if docname not in cache:
            cache[docname] = visit(desktop, page_url(base_url, docname))
        return cache[docname]

    return get


# --- every page ---------------------------------------------------------------------------

@pytest.mark.parametrize("docname", SITE_PAGES)
def test_page_loads_without_errors(reports, docname):
    r = reports(docname)
    assert r.status == 200, f"{r.url}: HTTP {r.status}"
    assert not r.console_errors, f"{r.url}: JavaScript console errors: {r.console_errors}"
    assert not r.failed_responses, f"{r.url}: failed requests: {r.failed_responses}"
    assert not r.offsite, f"{r.url}: requests that left the machine (blocked): {r.offsite}"


@functools.cache
def _fetch(url: str) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(url, timeout=10) as resp:
            body = resp.read()
            kind = resp.headers.get_content_type()
            return resp.status, body.decode("utf-8", "replace") if kind == "text/html" else ""
    except urllib.error.HTTPError as err:
        return err.code, ""


@pytest.mark.parametrize("docname", SITE_PAGES)
def test_internal_links_and_images_resolve(reports, base_url, docname):
    r = reports(docname)
    broken = []
    for ref in sorted(set(r.refs)):
        if not ref.startswith(base_url):
            continue  # data: images, the repository, the launch buttons: not this site's
        target, fragment = urldefrag(ref)
        status, html = _fetch(target)
        if status != 200:
            broken.append(f"{ref}: HTTP {status}")
        elif fragment and html and not re.search(rf"""\bid=["']{re.escape(unquote(fragment))}["']""", html):
            broken.append(f"{ref}: no element with id {fragment!r}")
    assert not broken, f"{r.url}: broken links or images:\n" + "\n".join(broken)
    not_loaded = [i["src"] for i in r.images if i["complete"] and i["width"] == 0 and i["src"]]
    assert not not_loaded, f"{r.url}: images that did not load: {not_loaded}"


@pytest.mark.parametrize("docname", SITE_PAGES)
def test_accessibility_no_serious_violations(reports, docname):
    r = reports(docname)
    bad = [v for v in r.axe if v["impact"] in ("serious", "critical")]
    assert not bad, f"{r.url}: axe-core violations:\n" + json.dumps(bad, indent=1)


@pytest.mark.parametrize("docname", SITE_PAGES)
def test_images_have_alt_text(reports, docname):
    r = reports(docname)
    missing = [i["src"] or i["id"] for i in r.images if not (i["alt"] or "").strip()]
    assert not missing, f"{r.url}: <img> without alt text: {missing}"
    # myst-nb's default alt for a cell's figure is its file name, which tells a reader nothing.
    as_filename = [i["alt"] for i in r.images
                   if re.fullmatch(r"[\w./-]+\.(png|jpe?g|svg|gif)", (i["alt"] or "").strip())]
    assert not as_filename, (
        f"{r.url}: alt text that is only a file name (give the figure a description, e.g. "
        f"cell metadata `mystnb: image: alt: ...`): {as_filename}")


# --- math, offline --------------------------------------------------------------------------

def test_math_typesets_from_the_site_itself(reports, base_url):
    with_math = [d for d in PAGES if reports(d).math["sources"]]
    assert with_math, "no page of the book has math to typeset"
    for docname in with_math:
        r = reports(docname)
        assert r.math["script"] and r.math["script"].startswith(base_url), (
            f"{r.url}: MathJax is not served by the site: {r.math['script']}")
        assert r.math["typeset"] >= r.math["sources"], (
            f"{r.url}: {r.math['sources']} equations but {r.math['typeset']} typeset (mjx-container)")
        assert not r.math["errors"], f"{r.url}: TeX errors: {r.math['errors']}"
        assert not r.offsite, f"{r.url}: requests left the machine: {r.offsite}"


# --- the sliding-window animation -------------------------------------------------------------

def test_sliding_window_animation_plays(desktop, base_url):
    source = (ROOT / f"{ANIMATION_CHAPTER}.md").read_text(encoding="utf-8")
    page = desktop.new_page()
    try:
        page.goto(page_url(base_url, ANIMATION_CHAPTER))
        players = page.locator("div.animation")
        assert players.count() > 0, (
            f"{ANIMATION_CHAPTER}: no matplotlib jshtml animation on the page"
            + ("" if "jshtml" in source or "animation_html" in source else " (none in the source yet)"))
        player = players.first
        img = player.locator("img[id^='_anim_img']")
        page.wait_for_function(
            "(el) => (el.getAttribute('src') || '').startsWith('data:image')", arg=img.element_handle())
        n_frames = int(player.locator("input.anim-slider").get_attribute("max"))
        assert n_frames >= 2, f"the animation has {n_frames + 1} frame(s)"
        first = img.get_attribute("src")
        # The control icons come from the site's own Font Awesome (not a CDN).
        assert page.evaluate("() => document.fonts.load('14px FontAwesome').then(f => f.length > 0)"), (
            "the player's icon font (Font Awesome) did not load")
        assert player.get_by_role("button", name="Play", exact=True).is_visible()

        player.get_by_role("button", name="Play", exact=True).click()
        seen = {first}
        for _ in range(150):  # up to 15 s: a busy machine may be slow to play
            page.wait_for_timeout(100)
            seen.add(img.get_attribute("src"))
            if len(seen) >= 3:
                break
        assert len(seen) >= 3, f"pressing Play showed {len(seen)} distinct frame(s)"

        player.get_by_role("button", name="Pause", exact=True).click()
        paused = img.get_attribute("src")
        page.wait_for_timeout(500)
        assert img.get_attribute("src") == paused, "the frame kept changing after Pause"
    finally:
        page.close()


# --- search --------------------------------------------------------------------------------------

_WORD = re.compile(r"[a-z]{7,}")


def _body_word(reports) -> tuple[str, str]:
    """A word from a chapter's body that few other pages use: (docname, word)."""
    texts = {d: reports(d).text.lower() for d in PAGES}
    for docname in PAGES[1:]:
        counts = Counter(_WORD.findall(texts[docname]))
        for word, _n in counts.most_common():
            others = sum(1 for d, t in texts.items() if d != docname and word in t)
            if others <= 2:
                return docname, word
    pytest.fail("no chapter has a distinctive word in its body yet")


def test_search_finds_a_chapter_by_a_word_from_its_body(desktop, reports, base_url):
    docname, word = _body_word(reports)
    page = desktop.new_page()
    try:
        page.goto(f"{base_url}search.html?q={word}")
        page.wait_for_function(
            "() => /Search finished/.test(document.querySelector('#search-results')?.textContent || '')",
            timeout=20_000)
        hits = page.eval_on_selector_all("#search-results ul.search li a", "as => as.map(a => a.href)")
    finally:
        page.close()
    assert any(urldefrag(h)[0].split("?")[0] == page_url(base_url, docname) for h in hits), (
        f"searching {word!r} did not find {docname}: {hits}")


# --- assignments: the student notebook to download ------------------------------------------------

def _student_file(name: str, docname: str) -> Path:
    """The released notebook that a download of ``name`` from page ``docname`` must equal."""
    own = ROOT / f"{docname}.ipynb"
    if own.name == name and own.exists():
        return own  # an assignment page offers its own notebook
    candidates = sorted((ROOT / "exercises").rglob(name))
    assert len(candidates) == 1, f"{docname}: the downloaded {name} matches {candidates} in exercises/"
    return candidates[0]


def _check_student_notebook(saved: Path, docname: str) -> None:
    got = saved.read_text(encoding="utf-8")
    for marker in SOLUTION_MARKERS:
        assert marker not in got, f"{docname}: the downloaded {saved.name} contains {marker!r}"
    released = _student_file(saved.name, docname)
    want, have = json.loads(released.read_text(encoding="utf-8")), json.loads(got)
    assert [(c["cell_type"], "".join(c["source"])) for c in have["cells"]] == [
        (c["cell_type"], "".join(c["source"])) for c in want["cells"]
    ], f"{docname}: the downloaded {saved.name} differs from {released.relative_to(ROOT)}"


@pytest.mark.parametrize("docname", ASSIGNMENTS or [None])
def test_assignment_pages_offer_the_student_notebook(desktop, base_url, docname, tmp_path):
    """Each page of the Assignments part lets a reader download released student notebooks:
    the links in its text (an overview's table), else the theme's "Download .ipynb" button
    (an assignment's own page)."""
    if docname is None:
        pytest.fail("_toc.yml has no 'Assignments' part (or it lists no page)")
    page = desktop.new_page()
    saved: list[Path] = []
    try:
        page.goto(page_url(base_url, docname))
        links = page.locator("article a[download][href$='.ipynb'], article a.download[href$='.ipynb']")
        use_menu = links.count() == 0
        if use_menu:
            links = page.locator(".dropdown-download-buttons a[href$='.ipynb']")
        assert links.count() > 0, f"{docname}: no link to download a student notebook"
        for i in range(links.count()):
            if use_menu and not links.nth(i).is_visible():
                page.locator(".dropdown-download-buttons button.dropdown-toggle").click()
            with page.expect_download(timeout=10_000) as info:
                links.nth(i).click()
            download = info.value
            (tmp_path / str(i)).mkdir()
            saved.append(tmp_path / str(i) / download.suggested_filename)
            download.save_as(saved[-1])
    finally:
        page.close()
    if docname.startswith("exercises/"):
        assert f"{Path(docname).name}.ipynb" in [p.name for p in saved], (
            f"{docname}: the page does not offer its own notebook: {[p.name for p in saved]}")
    for path in saved:
        _check_student_notebook(path, docname)


# --- look: screenshots, phone layout, dark mode, launch buttons --------------------------------------

@pytest.mark.parametrize("viewport_name", ["desktop", "phone"])
@pytest.mark.parametrize("which", ["landing", "chapter"])
def test_screenshot_and_no_horizontal_overflow(new_context, base_url, which, viewport_name):
    viewport = DESKTOP if viewport_name == "desktop" else PHONE
    ctx = new_context(viewport=viewport, device_scale_factor=1,
                      is_mobile=viewport_name == "phone", has_touch=viewport_name == "phone")
    page = ctx.new_page()
    try:
        if which == "landing":
            page.goto(base_url)  # index.html sends the reader on to the root page
            page.wait_for_url(f"**/{PAGES[0]}.html")
        else:
            page.goto(page_url(base_url, SCREENSHOT_CHAPTER))
        wait_for_math(page)
        page.wait_for_load_state("networkidle")
        ARTIFACTS.mkdir(exist_ok=True)
        page.screenshot(path=str(ARTIFACTS / f"{which}-{viewport_name}.png"), full_page=True)
        widths = page.evaluate("() => [document.documentElement.scrollWidth, window.innerWidth]")
    finally:
        page.close()
    assert widths[0] <= widths[1], f"{which} at {viewport}: page is {widths[0]}px wide, window {widths[1]}px"
    assert not ctx.offline_guard.blocked, f"requests left the machine: {ctx.offline_guard.blocked}"


def _png_is_opaque_at_corners(data: bytes) -> bool:
    from PIL import Image

    with Image.open(io.BytesIO(data)) as im:
        im = im.convert("RGBA")
        w, h = im.size
        return all(im.getpixel(xy)[3] == 255 for xy in [(0, 0), (w - 1, 0), (0, h - 1), (w - 1, h - 1)])


def test_dark_mode_figures_have_a_light_background(new_context, base_url, site_dir):
    ctx = new_context(viewport=DESKTOP, color_scheme="dark")
    checked, unreadable = 0, []
    for docname in PAGES:
        html = (site_dir / f"{docname}.html").read_text(encoding="utf-8")
        if not re.search(r"<img[^>]*(_images/|_anim_img)", html):
            continue
        page = ctx.new_page()
        try:
            page.goto(page_url(base_url, docname))
            assert page.get_attribute("html", "data-theme") == "dark"
            if docname == SCREENSHOT_CHAPTER:  # the first figure, as a reader sees it
                page.locator("article img").first.scroll_into_view_if_needed()
                ARTIFACTS.mkdir(exist_ok=True)
                page.screenshot(path=str(ARTIFACTS / "chapter-dark-desktop.png"))
            page.wait_for_function("() => Array.from(document.querySelectorAll('article img'))"
                                   ".every(i => i.getAttribute('src'))")
            figures = page.evaluate("""() => Array.from(document.querySelectorAll('article img'), i => ({
                src: i.src, background: getComputedStyle(i).backgroundColor}))""")
        finally:
            page.close()
        for fig in figures:
            checked += 1
            rgba = [float(x) for x in re.findall(r"[\d.]+", fig["background"])]
            light_css = len(rgba) >= 3 and (len(rgba) == 3 or rgba[3] == 1) and min(rgba[:3]) >= 200
            if light_css:
                continue
            src = fig["src"]
            if src.startswith("data:image/png;base64,"):
                data = base64.b64decode(src.split(",", 1)[1])
            elif src.startswith(base_url) and src.endswith(".png"):
                data = (site_dir / unquote(src[len(base_url):])).read_bytes()
            else:
                unreadable.append(f"{docname}: {src[:80]} (no light CSS background, not a PNG)")
                continue
            if not _png_is_opaque_at_corners(data):
                unreadable.append(f"{docname}: {src[:80]} is transparent on a dark page")
    assert checked, "no page has a figure to check"
    assert not unreadable, "figures unreadable in dark mode:\n" + "\n".join(unreadable)


def test_chapters_have_launch_buttons(reports):
    config = yaml.safe_load((ROOT / "_config.yml").read_text(encoding="utf-8"))
    launch = config.get("launch_buttons", {})
    repo = urlparse(config["repository"]["url"]).path.strip("/")
    expected = {}
    if launch.get("binderhub_url"):
        expected["Binder"] = f"{launch['binderhub_url'].rstrip('/')}/v2/gh/{repo}/"
    if launch.get("jupyterhub_url"):
        expected["JupyterHub"] = f"{launch['jupyterhub_url'].rstrip('/')}/hub/user-redirect/git-pull?repo="
    assert expected, "_config.yml configures no launch button (binderhub_url / jupyterhub_url)"
    ui = "lab/tree" if launch.get("notebook_interface") == "jupyterlab" else "tree"
    for docname in [d for d in PAGES if d.startswith("chapters/")]:
        if not (ROOT / f"{docname}.md").read_text(encoding="utf-8").startswith("---\njupytext"):
            continue  # a plain Markdown page is not a notebook
        hrefs = reports(docname).launch
        for name, prefix in expected.items():
            assert any(h.startswith(prefix) and ui in h and docname in h for h in hrefs), (
                f"{docname}: no {name} launch link ({prefix}...{ui}/{docname}) in {hrefs}")


# --- the pages of part two (issue 11): every one fits a phone, code fits a desktop -----------

PART_TWO_PAGES = [
    "intro", "chapters/summary", "chapters/notation", "chapters/theory", "chapters/step_by_step",
    "chapters/advantages", "chapters/disadvantages", "chapters/applications",
    "chapters/applications_detection", "chapters/applications_faces", "chapters/applications_medical",
    "chapters/backpropagation",
]


@pytest.mark.parametrize("docname", PART_TWO_PAGES)
@pytest.mark.parametrize("viewport_name", ["desktop", "phone"])
def test_part_two_pages_fit_the_screen(new_context, base_url, docname, viewport_name):
    """No sideways overflow of the page, no formula or table clipped (each scrolls in its
    own box), and, on the desktop, no line of code wider than its cell."""
    assert docname in PAGES, f"{docname} is not in _toc.yml"
    viewport = DESKTOP if viewport_name == "desktop" else PHONE
    ctx = new_context(viewport=viewport, device_scale_factor=1,
                      is_mobile=viewport_name == "phone", has_touch=viewport_name == "phone")
    page = ctx.new_page()
    try:
        page.goto(page_url(base_url, docname))
        wait_for_math(page)
        page.wait_for_load_state("networkidle")
        ARTIFACTS.mkdir(exist_ok=True)
        shot = ARTIFACTS / f"{docname.replace('/', '-')}-{viewport_name}.png"
        page.screenshot(path=str(shot), full_page=True)
        widths = page.evaluate("() => [document.documentElement.scrollWidth, window.innerWidth]")
        clipped = page.evaluate("""() => Array.from(document.querySelectorAll(
                'article mjx-container, article table')).filter(e => {
            const box = e.getBoundingClientRect();
            const article = document.querySelector('article').getBoundingClientRect();
            const scrolls = ['auto', 'scroll'].includes(getComputedStyle(e).overflowX)
                || ['auto', 'scroll'].includes(getComputedStyle(e.parentElement).overflowX);
            return box.right > article.right + 1 && !scrolls;
        }).map(e => e.tagName + ': ' + e.textContent.slice(0, 60))""")
        cut_code = page.evaluate("""() => Array.from(document.querySelectorAll('div.cell_input pre'))
            .filter(p => p.scrollWidth > p.clientWidth + 1)
            .map(p => p.textContent.split('\\n').sort((a, b) => b.length - a.length)[0].slice(0, 80))""")
    finally:
        page.close()
    assert widths[0] <= widths[1], f"{docname} at {viewport}: page {widths[0]}px wide, window {widths[1]}px"
    assert not clipped, f"{docname} at {viewport}: clipped formulas or tables: {clipped}"
    if viewport_name == "desktop":
        assert not cut_code, f"{docname}: code lines wider than their cell at 1280 px: {cut_code}"


@pytest.mark.parametrize("docname", ["intro", "chapters/step_by_step", "chapters/applications_medical"])
def test_figures_keep_their_aspect_ratio_on_a_phone(new_context, base_url, docname):
    """Retina PNGs carry an inline width and height; scaled to a phone's column they must
    shrink in both directions, not be squashed sideways."""
    ctx = new_context(viewport=PHONE, device_scale_factor=1, is_mobile=True, has_touch=True)
    page = ctx.new_page()
    try:
        page.goto(page_url(base_url, docname))
        page.wait_for_load_state("networkidle")
        shapes = page.evaluate("""() => Array.from(document.querySelectorAll('article img'))
            .filter(i => i.naturalWidth > 0 && i.getBoundingClientRect().width > 0)
            .map(i => [i.naturalWidth / i.naturalHeight,
                       i.getBoundingClientRect().width / i.getBoundingClientRect().height,
                       (i.getAttribute('src') || '').slice(-24)])""")
    finally:
        page.close()
    assert shapes, f"{docname}: no figure"
    squashed = [s for s in shapes if abs(s[1] / s[0] - 1) > 0.03]
    assert not squashed, f"{docname}: figures drawn at another aspect ratio (natural, shown, src): {squashed}"


@pytest.mark.parametrize("docname", ["intro", "chapters/applications", "chapters/applications_detection",
                                     "chapters/applications_faces", "chapters/applications_medical"])
def test_figure_text_at_least_body_text_on_a_desktop(desktop, base_url, docname):
    """A figure's text is drawn at COURSE_STYLE's font size; shown in the column it must
    still be at least as large as the page's body text (figures are 'retina' PNGs: the
    PNG has twice the pixels of the figure)."""
    from conv_lib.plotting import COURSE_STYLE

    page = desktop.new_page()
    try:
        page.goto(page_url(base_url, docname))
        page.wait_for_load_state("networkidle")
        body_px = page.evaluate(
            "() => parseFloat(getComputedStyle(document.querySelector('article p')).fontSize)")
        figures = page.evaluate("""() => Array.from(document.querySelectorAll('article img'))
            .filter(i => i.naturalWidth > 0 && i.src.includes('_images/'))
            .map(i => [i.getBoundingClientRect().width, i.naturalWidth,
                       (i.getAttribute('alt') || '').slice(0, 50)])""")
    finally:
        page.close()
    assert figures, f"{docname}: no figure"
    font_px = COURSE_STYLE["font.size"] * COURSE_STYLE["figure.dpi"] / 72
    small = [(round(font_px * shown * 2 / natural, 1), alt) for shown, natural, alt in figures
             if font_px * shown * 2 / natural < body_px - 0.25]
    assert not small, f"{docname}: figure text smaller than the {body_px}px body text: {small}"
