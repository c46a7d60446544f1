"""The claims issue 11 added to the book, read back from the built HTML.

Each test finds the sentence or table row on the built page and checks the number in it,
or recomputes the expected value here (with SciPy, pydicom or conv_lib) and compares.
Pages: the one-page summary, the split applications pages (detection, faces, medical
imaging), the real-photograph section of the step-by-step chapter, the landing page, and
the corrected statements of theory, notation and advantages.
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest
from book_pages import find, main_text, read_page
from scipy.signal import convolve2d as scipy_convolve2d
from scipy.signal import correlate2d as scipy_correlate2d

import conv_lib as cl

ROOT = Path(__file__).resolve().parents[1]
SUMMARY_SOURCE = ROOT.parent / "shared" / "summary" / "convolution.md"
APPLICATION_PAGES = {  # page -> minimum number of figures
    "applications": 3,
    "applications_detection": 2,
    "applications_faces": 2,
    "applications_medical": 4,
}


# --- every new or split page -------------------------------------------------------------

@pytest.mark.parametrize("page", sorted(APPLICATION_PAGES))
def test_application_pages_built_cleanly_with_figures(site_dir, page):
    page_html = read_page(site_dir, page)
    text = main_text(page_html)
    assert "Traceback" not in text
    assert "output stderr" not in page_html, "a cell printed a warning or an error"
    assert "What you will learn" in text and "What you need" in text and "Exercise" in text
    figures = [t for t in re.findall(r"<img\b[^>]*>", page_html) if "_images/" in t]
    assert len(figures) >= APPLICATION_PAGES[page], (page, len(figures))
    for tag in figures:
        alt = re.search(r'alt="([^"]*)"', tag)
        assert alt and len(alt.group(1).strip()) > 20, tag


def test_no_page_speaks_of_the_seed(site_dir):
    pages = [p for p in (site_dir / "chapters").glob("*.html")] + [site_dir / "intro.html"]
    for path in pages:
        text = main_text(path.read_text(encoding="utf-8")).lower()
        # the one-page summary called "the seed"; random seeds are fine
        seed_words = r"\bseed('s|’s| (image|kernel|example|claim|application|row|text|table|formula|page))\b"
        assert not re.search(seed_words, text), path.name


# --- the one-page summary is a page of the book ---------------------------------------------

def test_summary_page_reproduces_the_one_page_summary(site_dir):
    text = main_text(read_page(site_dir, "summary"))
    assert "The one-page summary" in text
    source = SUMMARY_SOURCE.read_text(encoding="utf-8") if SUMMARY_SOURCE.exists() else None
    rows = ["Parameter Sharing", "Local Connectivity", "Translation Invariance", "Efficient Computation",
            "Loss of Spatial Info", "Computational Cost", "Requires Hyperparameter Tuning",
            "Image Classification", "Object Detection", "Face Recognition", "Medical Imaging"]
    for row in rows:
        assert row in text, row
        if source is not None:
            assert row in source, f"{row} is not in the one-page summary itself"
    assert "feature_map=convolve2d(image,kernel,mode='valid')" in re.sub(r"\s", "", text)


def test_every_expanding_chapter_links_to_the_summary(site_dir):
    for page in ["notation", "theory", "step_by_step", "advantages", "disadvantages",
                 "applications", "applications_detection", "applications_faces", "applications_medical"]:
        page_html = read_page(site_dir, page)
        assert 'href="summary.html' in page_html, f"{page} does not link to the one-page summary"


# --- applications: classification validates on a validation set ------------------------------

def test_classification_trains_with_a_validation_set_not_the_test_set(site_dir):
    text = main_text(read_page(site_dir, "applications"))
    m = find(r"on (\d+) images \(with (\d+) for validation\), and classifies ([\d.]+) ?% "
             r"of the (\d+) held-out", text)
    n_fit, n_val, acc, n_test = int(m[1]), int(m[2]), float(m[3]), int(m[4])
    assert n_fit + n_val + n_test == 1797  # scikit-learn's digits, split three ways
    assert acc >= 95
    assert "accuracy on the training and the validation set after each epoch" in text


# --- detection -------------------------------------------------------------------------------

def test_template_matching_agrees_with_skimage_and_finds_the_coins(site_dir):
    text = main_text(read_page(site_dir, "applications_detection"))
    assert float(find(r"match_template differ by at most ([\d.]+e[-+]\d+)", text)[1]) < 1e-6
    hits, total, false = map(int, find(r"finds (\d+) of (\d+) with (\d+) false detections", text).groups())
    assert total >= 20 and hits >= total - 2 and false <= 2


def test_learned_detector_receptive_field_and_scores(site_dir):
    text = main_text(read_page(site_dir, "applications_detection"))
    assert "receptive field 24 x 24 pixels, outputs 4 pixels apart" in text
    row = find(r"fully convolutional network, learned \( ?(\d+) parameters\) (\d+) of (\d+) (\d+)", text)
    params, found, total, false = map(int, row.groups())
    assert params == 8 * 25 + 8 + 16 * 8 * 9 + 16 + 16 * 16 + 1  # conv 8x5x5, conv 16x3x3, conv 1x4x4
    assert total == 30 and 0 <= found <= total and false >= 0
    ncc = find(r"template matching, mean training face \(NCC\) (\d+) of (\d+) (\d+)", text)
    assert int(ncc[2]) == total
    # the detector was trained: it finds at least half of the test faces
    assert found >= total // 2
    assert re.search(r"threshold \d\.\d\d \(from validation\)", text)


# --- faces -----------------------------------------------------------------------------------

def test_faces_page_says_no_identity_data_ships(site_dir):
    text = main_text(read_page(site_dir, "applications_faces"))
    assert "no identity labels" in text
    for searched in ["fetch_olivetti_faces", "fetch_lfw_people", "face-api.js"]:
        assert searched in text
    assert "does not claim identity recognition" in text


def test_face_classification_and_reidentification_tables(site_dir):
    text = main_text(read_page(site_dir, "applications_faces"))
    m = find(r"HOG-like \( ?\d+ numbers\) ([\d.]+)% ± [\d.]+% ([\d.]+)% ([\d.]+)%", text)
    assert float(m[2]) >= 80
    pix = find(r"raw pixels (\d+)% ([\d.]+)% \| ?HOG|raw pixels (\d+)% ([\d.]+)% HOG-like \(Sobel", text)
    hog = find(r"HOG-like \(Sobel convolutions\) (\d+)% ([\d.]+)%", text)
    values = [v for v in pix.groups() if v is not None]
    pix_rank1, hog_rank1 = float(values[0]), float(hog[1])
    assert 0 <= pix_rank1 <= 100 and 0 <= hog_rank1 <= 100
    # the page's reading: the convolutional descriptor finds more of the changed faces again
    assert hog_rank1 > pix_rank1


# --- medical imaging --------------------------------------------------------------------------

def test_medical_page_reads_real_ct_and_mr_slices(site_dir):
    pydicom = pytest.importorskip("pydicom")  # a dependency of the book; see pyproject.toml
    from pydicom.data import get_testdata_file

    text = main_text(read_page(site_dir, "applications_medical"))
    ds = pydicom.dcmread(get_testdata_file("CT_small.dcm", download=False))
    hu = ds.pixel_array * float(ds.RescaleSlope) + float(ds.RescaleIntercept)
    m = find(r"CT \(128, 128\), ([\d.]+) mm pixels, HU from (-?\d+) to (-?\d+)", text)
    assert float(m[1]) == pytest.approx(float(ds.PixelSpacing[0]), abs=0.01)
    assert (int(m[2]), int(m[3])) == (round(hu.min()), round(hu.max()))
    assert "MR (64, 64)" in text


def test_lesion_detection_rates_rise_with_contrast(site_dir):
    text = main_text(read_page(site_dir, "applications_medical"))
    for name in ["pixel value", "Gaussian matched filter", "Laplacian of Gaussian"]:
        line = find(name + r": false alarms ([\d.]+)%; found ((?:\d+% at \d+ HU,? ?)+)", text)
        rates = [int(r) for r in re.findall(r"(\d+)% at", line[2])]
        assert len(rates) == 6 and rates == sorted(rates), (name, rates)  # more contrast, more found
        assert float(line[1]) <= 2.0
    sentence = find(r"At a contrast of 80 HU the raw pixel finds (\d+)% of the lesions, the Gaussian "
                    r"matched filter (\d+)% and the Laplacian of Gaussian (\d+)%", text)
    pixel, gauss, log = map(int, sentence.groups())
    assert max(gauss, log) > pixel  # the convolution helps, as the text says
    assert "not a diagnostic method" in text or "**not** a diagnostic method" in text


# --- step by step: a real photograph -------------------------------------------------------------

def test_real_photograph_sign_flip(site_dir):
    from skimage import data
    from skimage.util import img_as_float64

    text = main_text(read_page(site_dir, "step_by_step"))
    photo = img_as_float64(data.camera())
    K = np.array([[1, 0, -1], [1, 0, -1], [1, 0, -1]])
    conv = scipy_convolve2d(photo, K, mode="same")
    corr = scipy_correlate2d(photo, K, mode="same")
    assert np.max(np.abs(conv + corr)) < 1e-12  # SciPy sums in another order: equal to rounding
    # conv_lib correlates with the flipped kernel, so its two maps are exact negatives
    assert np.max(np.abs(cl.convolve2d(photo, K, mode="same") + cl.correlate2d(photo, K, mode="same"))) == 0.0
    assert "max |convolution + correlation| = 0.0" in text
    inner = conv[1:-1, 1:-1]
    r, c = (int(v) + 1 for v in np.unravel_index(np.argmax(inner), inner.shape))
    m = find(r"at pixel \((\d+), (\d+)\): convolution \+([\d.]+), correlation -([\d.]+)", text)
    assert (int(m[1]), int(m[2])) == (r, c)
    assert float(m[3]) == pytest.approx(conv[r, c], abs=1e-3)
    assert float(m[4]) == pytest.approx(conv[r, c], abs=1e-3)
    assert "Feature maps of a real photograph" in text


# --- corrections --------------------------------------------------------------------------------

def test_theory_exercise_solution_and_associativity(site_dir):
    text = main_text(read_page(site_dir, "theory"))
    image, K = np.arange(9).reshape(3, 3), np.array([[1, 2], [2, 1]])
    corr = scipy_correlate2d(image, K, mode="valid").astype(int).tolist()  # conv_lib's default mode
    rotated = scipy_convolve2d(image, K, mode="valid")[::-1, ::-1].astype(int).tolist()
    assert corr != rotated
    assert f"correlation gives {corr}" in text and f"the rotated convolution {rotated}" in text
    assert "No nonzero kernel works for every image" in text
    assert "Cross-correlation is not associative" in text
    m = find(r"regrouping two of them by up to ([\d.]+) \(but by ([\d.]+) with the kernels convolved\)",
             text)
    assert float(m[1]) > 0 and float(m[2]) == 0
    assert "verbatim" not in text


def test_kernel_flip_figure_uses_kernel_offsets(site_dir):
    text = main_text(read_page(site_dir, "theory"))
    assert "K(-a, -b)" in text and "K(-m, -n)" not in text


def test_notation_output_size_depends_on_the_image(site_dir):
    text = main_text(read_page(site_dir, "notation"))
    assert re.search(r"whatever the image size, and a 32 \\\(\\times\\\) 32 output", text)
    assert re.search(r"\\\(64 \\times 64\\\) image gives a 64 \\\(\\times\\\) 64 output", text)


def test_effective_receptive_field_text_follows_the_measurement(site_dir):
    text = main_text(read_page(site_dir, "advantages"))
    assert "ReLUs and max pooling" not in text
    m = find(r"Half of the gradient.s mass lies in a centred square of side (\d+) \(positive weights\) "
             r"and (\d+) \(signed weights\) of the (\d+) ?-pixel receptive field", text)
    positive, signed, field = map(int, m.groups())
    assert positive < field and signed < field  # concentrated in the middle, as the text says
    assert signed >= positive  # "no stronger, rather a little weaker" with signed weights
    tb = float(find(r"would take ([\d.]+) TB in float64", text)[1])
    assert tb == pytest.approx(8 * 512**4 * 8 / 1e12, rel=0.05)


def test_cross_references_corrected(site_dir):
    backprop = main_text(read_page(site_dir, "backpropagation"))
    assert "applications uses it" not in backprop and "Applications uses it" not in backprop
    step = main_text(read_page(site_dir, "step_by_step"))
    assert "Press the play button" in step
    assert r"starts at input pixel \((1, 1)\)" in step
    apps = main_text(read_page(site_dir, "applications"))
    assert "Sobel kernels of Theory" not in apps


# --- the landing page ----------------------------------------------------------------------------

def test_landing_page_shows_figure_map_and_three_ways(site_dir):
    page_html = read_page(site_dir, "intro")
    text = main_text(page_html)
    assert re.search(r"<img\b[^>]*_images/", page_html), "no figure on the landing page"
    for way in ["Read", "Run", "Take the graded assignments"]:
        assert way in text
    assert "Map of the course" in text
    for page in ["summary", "applications_detection", "applications_faces", "applications_medical"]:
        assert f'href="chapters/{page}.html' in page_html, page
    assert re.search(r'<link[^>]+rel="icon"[^>]+favicon\.png', page_html), "no favicon"
