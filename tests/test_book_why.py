"""The built 'Why convolution' pages (advantages, disadvantages, applications) exist and
show their computed key results."""

from __future__ import annotations

import re

import pytest
from book_pages import main_text, read_page

PAGES = {"advantages": 5, "disadvantages": 4, "applications": 3}  # page -> minimum figure count
# The detection, faces and medical pages split off applications: tests/test_book_part_two.py.


@pytest.mark.parametrize("page", sorted(PAGES))
def test_page_built_without_errors(site_dir, page):
    page_html = read_page(site_dir, page)
    text = main_text(page_html)
    assert "Traceback" not in text
    assert "output stderr" not in page_html  # no warnings or errors printed by a cell
    assert "What you will learn" in text and "What you need" in text
    assert "Exercise" in text


@pytest.mark.parametrize("page", sorted(PAGES))
def test_figures_have_alt_text(site_dir, page):
    page_html = read_page(site_dir, page)
    imgs = re.findall(r"<img\b[^>]*>", page_html)
    figures = [i for i in imgs if "_images/" in i]
    assert len(figures) >= PAGES[page], (page, len(figures))
    for tag in figures:
        alt = re.search(r'alt="([^"]*)"', tag)
        assert alt and len(alt.group(1).strip()) > 20, tag


def test_digits_cnn_accuracy_at_least_95_percent(site_dir):
    text = main_text(read_page(site_dir, "applications"))
    m = re.search(r"classifies ([\d.]+) ?% of the (\d+) held-out test images", text)
    assert m, "accuracy sentence not found"
    assert float(m.group(1)) / 100 >= 0.95
    assert int(m.group(2)) > 400


def test_ncc_agrees_with_skimage(site_dir):
    text = main_text(read_page(site_dir, "applications_detection"))
    m = re.search(r"match_template differ by at most ([\d.]+e[-+]\d+)", text)
    assert m, "NCC comparison sentence not found"
    assert float(m.group(1)) < 1e-6


def test_coin_detection_result(site_dir):
    text = main_text(read_page(site_dir, "applications_detection"))
    m = re.search(r"finds (\d+) of (\d+) with (\d+) false detections", text)
    assert m, "detection result sentence not found"
    hits, total, false = map(int, m.groups())
    assert total >= 20 and hits >= total - 2 and false <= 2


def test_face_accuracy_reported(site_dir):
    text = main_text(read_page(site_dir, "applications_faces"))
    assert "not identity" in text or "no identity labels" in text
    m = re.search(r"HOG-like \( ?\d+ numbers\) ([\d.]+)% ± [\d.]+% ([\d.]+)%", text)
    assert m, "face table row not found"
    assert float(m.group(2)) >= 80


def test_receptive_field_check_and_equivariance(site_dir):
    text = main_text(read_page(site_dir, "advantages"))
    m = re.search(r"support is a (\d+) ?-pixel square .*? exactly the size \( ?(\d+) ?\)", text)
    assert m and m.group(1) == m.group(2)
    m = re.search(r"largest difference is ([\d.]+e[-+]\d+)", text)
    assert m and float(m.group(1)) < 1e-10
