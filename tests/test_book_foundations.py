"""The built website's foundation chapters contain their key, executed results.

Expected values are computed here (with SciPy on the one-page summary arrays, or with conv_lib), never
typed, and looked for in the HTML that the book build produced (fixture ``site_dir``).
"""

from __future__ import annotations

import re
from html.parser import HTMLParser
from pathlib import Path

import numpy as np
import pytest
from book_pages import read_page
from scipy.signal import convolve2d as scipy_convolve2d
from scipy.signal import correlate2d as scipy_correlate2d

from conv_lib import SUMMARY_IMAGE, SUMMARY_KERNEL, jshtml_frame_count

PAGES = {
    "notation": "Notation and conventions",
    "theory": "Theory: where the formula comes from",
    "step_by_step": "Step by step: one window at a time",
    "efficient_convolution": "Computing convolutions efficiently",
    "backpropagation": "Backpropagation through a convolution",
}

# The one-page summary's own example, written out as in the one-page summary (the test's oracle is SciPy).
SUMMARY_TEXT_IMAGE = np.array(
    [[1, 2, 3, 0, 0], [4, 5, 6, 0, 0], [7, 8, 9, 0, 0], [0, 0, 0, 0, 0], [0, 0, 0, 0, 0]]
)
SUMMARY_TEXT_KERNEL = np.array([[1, 0, -1], [1, 0, -1], [1, 0, -1]])


class _Page(HTMLParser):
    """Collects a page's visible text (scripts and styles excluded) and its <img> tags."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.text_parts: list[str] = []
        self.images: list[dict[str, str | None]] = []
        self._skip = 0

    def handle_starttag(self, tag, attrs):
        if tag in ("script", "style"):
            self._skip += 1
        if tag == "img":
            self.images.append(dict(attrs))

    def handle_startendtag(self, tag, attrs):
        if tag == "img":
            self.images.append(dict(attrs))

    def handle_endtag(self, tag):
        if tag in ("script", "style") and self._skip:
            self._skip -= 1

    def handle_data(self, data):
        if not self._skip:
            self.text_parts.append(data)

    @property
    def text(self) -> str:
        return "".join(self.text_parts)


def _parse(site_dir: Path, name: str) -> _Page:
    page = _Page()
    page.feed(read_page(site_dir, name))
    return page


def _squash(text: str) -> str:
    """Collapse whitespace, so printed arrays and prose compare reliably."""
    return re.sub(r"\s+", " ", text)


@pytest.fixture(scope="module")
def summary_feature_map() -> np.ndarray:
    assert np.array_equal(SUMMARY_IMAGE, SUMMARY_TEXT_IMAGE)
    assert np.array_equal(SUMMARY_KERNEL, SUMMARY_TEXT_KERNEL)
    return scipy_convolve2d(SUMMARY_TEXT_IMAGE, SUMMARY_TEXT_KERNEL, mode="valid")


@pytest.mark.parametrize("name", list(PAGES))
def test_page_built_with_title_and_no_errors(site_dir, name):
    page = _parse(site_dir, name)
    text = page.text
    assert PAGES[name] in text
    assert "placeholder" not in text.lower()
    assert "Traceback" not in text, f"{name}: an output shows a traceback"
    assert 'class="output stderr"' not in read_page(site_dir, name), f"{name}: a cell wrote to stderr"


@pytest.mark.parametrize("name", list(PAGES))
def test_page_opens_with_learn_and_need(site_dir, name):
    text = _parse(site_dir, name).text
    learn, need = text.find("What you will learn"), text.find("What you need")
    assert 0 <= learn < need


@pytest.mark.parametrize("name", list(PAGES))
def test_page_has_exercises_with_dropdown_solutions(site_dir, name):
    html = read_page(site_dir, name)
    assert html.count('class="admonition exercise') >= 2 or html.count("exercise admonition") >= 2
    solutions = re.findall(r'<div class="([^"]*solution[^"]*)"', html)
    assert solutions, f"{name}: no solutions"
    assert all("dropdown" in cls for cls in solutions), solutions


@pytest.mark.parametrize("name", list(PAGES))
def test_every_image_has_alt_text(site_dir, name):
    images = _parse(site_dir, name).images
    content = [img for img in images if "logo" not in (img.get("class") or "")]
    assert content, f"{name}: no images"
    for img in content:
        assert (img.get("alt") or "").strip(), f"{name}: image without alt text: {img}"


@pytest.mark.parametrize("name", ["theory", "step_by_step", "efficient_convolution", "backpropagation"])
def test_figures_are_embedded_files(site_dir, name):
    images = _parse(site_dir, name).images
    files = [img["src"] for img in images if (img.get("src") or "").startswith("../_images/")]
    assert files, f"{name}: no figure files"
    for src in files:
        assert (site_dir / "chapters" / src).resolve().exists(), src


def test_theory_reproduces_summary_example(site_dir, summary_feature_map):
    text = _squash(_parse(site_dir, "theory").text)
    # SciPy's printout (the one-page summary's program run verbatim) and conv_lib's (float) printout.
    assert _squash("Feature Map:\n " + str(summary_feature_map)) in text
    assert _squash(str(summary_feature_map.astype(float))) in text
    # The glued prose states the feature map row by row.
    rows = [f"({', '.join(str(v) for v in row)})" for row in summary_feature_map.tolist()]
    stated = re.escape(f"{rows[0]}, {rows[1]} and {rows[2]}")
    assert re.search(r"Row by row, \\?\(?S\\?\)? is " + stated, text)
    assert "conv_lib matches SciPy exactly" in text


def test_theory_shows_opposite_signs_of_correlation(site_dir, summary_feature_map):
    text = _squash(_parse(site_dir, "theory").text)
    corr = scipy_correlate2d(SUMMARY_TEXT_IMAGE, SUMMARY_TEXT_KERNEL, mode="valid")
    assert np.array_equal(corr, -summary_feature_map)
    assert _squash(str(corr.astype(float))) in text
    assert f"top-left value {summary_feature_map[0, 0]} versus {corr[0, 0]}" in text


def test_theory_properties_hold_exactly(site_dir):
    text = _squash(_parse(site_dir, "theory").text)
    assert "linearity: max abs difference = 0.0" in text
    assert "associativity: max abs difference = 0.0" in text
    assert re.search(r"max \|conv\(shift\(I\)\) - shift\(conv\(I\)\)\| = 0\.0", text)


def test_step_by_step_animations(site_dir, summary_feature_map):
    html = read_page(site_dir, "step_by_step")
    players = html.split('<div class="animation">')[1:]
    assert len(players) >= 2, "expected the one-page summary animation and the stride/padding animation"
    first = players[0]
    assert jshtml_frame_count(first) == summary_feature_map.size > 1
    assert f"new Array({summary_feature_map.size})" in first
    img = re.search(r"<img[^>]*id=\"_anim_img[^>]*>", first)
    assert img and re.search(r'alt="[^"]+"', img.group(0))
    for player in players:
        assert jshtml_frame_count(player) > 1


def test_step_by_step_walk_and_sizes(site_dir, summary_feature_map):
    text = _squash(_parse(site_dir, "step_by_step").text)
    assert _squash(str(summary_feature_map.astype(float))) in text
    assert f"= {summary_feature_map[0, 0]}" in text  # WindowStep.explain() of the first window
    for mode, shape in [("valid", (3, 3)), ("same", (5, 5)), ("full", (7, 7))]:
        assert re.search(rf"{mode}\s+= padding \d: output \({shape[0]}, {shape[1]}\)", text)
    assert "stride-2 output == stride-1 output[::2, ::2]" in text


def test_efficient_convolution_im2col_and_fft(site_dir, summary_feature_map):
    text = _squash(_parse(site_dir, "efficient_convolution").text)
    assert "cols.shape = (6, 9)" in text  # a 4x5 image, a 2x3 kernel: 6 taps, 9 windows
    assert "equals the one-page summary's feature map" in text
    assert _squash(str(summary_feature_map.astype(float))) in text
    assert re.search(r"full\s+fft\s+max \|difference to direct\| = \d\.\de-1[3-6]", text)
    assert "ms/call" in text and "conv_lib winograd" in text and "conv_lib im2col" in text  # the layer table
    # the prose's ratio of Winograd's NumPy transforms to its compiled ones is the table's
    numpy_ms = float(re.search(r"conv_lib winograd, NumPy transforms\s+([\d.]+)", text).group(1))
    compiled_ms = float(re.search(r"conv_lib winograd\s+([\d.]+)", text).group(1))
    said = re.search(r"the NumPy version took ([\d.]+) times as long as the compiled one", text)
    said = float(said.group(1))
    assert abs(said - numpy_ms / compiled_ms) <= 0.06 * said + 0.05


def test_backpropagation_gradient_checks_pass(site_dir):
    text = _squash(_parse(site_dir, "backpropagation").text)
    assert text.count("gradient check PASSED") >= 3
    assert "All three checks PASSED" in text
    assert text.count("gradient check FAILED") == 1  # the deliberately wrong formula
    assert "relative difference" in text


def test_notation_links_to_other_chapters(site_dir):
    html = read_page(site_dir, "notation")
    for target in ("theory.html", "step_by_step.html", "efficient_convolution.html", "backpropagation.html"):
        assert f'href="{target}' in html, target
