"""The 'Convolutional networks in practice' pages, read back from the built HTML.

cnn_in_practice (a deeper CNN on MNIST against a dense network with the same parameter
budget, what each layer learned), hyperparameters (sweeps from real training runs) and
modern_layers (1x1, depthwise-separable, transposed, dilated, strided, global average
pooling, residual). Each test finds the sentence or table row on the built page and checks
its numbers: counts are recomputed here with conv_lib, accuracies are checked against each
other and against their spread. The last tests open the pages in Chromium at desktop and
phone sizes (fixtures of tests/test_website.py).
"""

from __future__ import annotations

import re

import pytest
from book_pages import NUMBER, find, main_text, read_page, table_rows, to_number
from test_website import ARTIFACTS, DESKTOP, PHONE, page_url, wait_for_math

import conv_lib as cl

PAGES = {"cnn_in_practice": 5, "hyperparameters": 1, "modern_layers": 3}  # page -> min. figures


def _pct(s: str) -> float:
    return to_number(s) / 100


def _ints(cell: str) -> list[int]:
    """Every whole number in a table cell, in order."""
    return [int(v.replace(",", "")) for v in re.findall(r"\d[\d,]*", cell)]


# --- every page --------------------------------------------------------------------------

@pytest.mark.parametrize("page", sorted(PAGES))
def test_pages_built_cleanly_with_exercises_and_described_figures(site_dir, page):
    page_html = read_page(site_dir, page)
    text = main_text(page_html)
    assert "Traceback" not in text and "output stderr" not in page_html
    assert "What you will learn" in text and "What you need" in text
    assert text.count("Exercise") >= 2 and "Solution" in text
    figures = [t for t in re.findall(r"<img\b[^>]*>", page_html) if "_images/" in t]
    assert len(figures) >= PAGES[page], (page, len(figures))
    for tag in figures:
        alt = re.search(r'alt="([^"]*)"', tag)
        assert alt and len(alt.group(1).strip()) > 40, tag
    assert "glue(" not in text  # bookkeeping cells are removed from the page


# --- cnn_in_practice -----------------------------------------------------------------------

def _model_rows(site_dir):
    rows = {r[0].split(",")[0]: r for r in table_rows(read_page(site_dir, "cnn_in_practice")) if len(r) == 6}
    assert "CNN (2 conv blocks)" in rows, rows
    dense = [k for k in rows if k.startswith("dense 784-")]
    assert len(dense) == 1, rows
    return rows["CNN (2 conv blocks)"], rows[dense[0]], dense[0]


def _acc_cells(row):
    mean, sd = (float(v) / 100 for v in re.findall(r"([\d.]+) ?%", row[3]))
    worst, best = (float(v) / 100 for v in re.findall(r"([\d.]+) ?%", row[4]))
    return mean, sd, worst, best


def test_cnn_and_dense_have_the_counts_conv_lib_computes(site_dir):
    cnn, dense, dense_name = _model_rows(site_dir)
    net = cl.ConvNet((1, 28, 28), (cl.ConvBlock(8, 3), cl.ConvBlock(16, 3)))
    assert to_number(cnn[1]) == net.param_count() == 9098
    assert to_number(cnn[2]) == net.macs()["total"]
    hidden = cl.dense_width_for_budget(784, net.param_count())
    assert dense_name.replace(" ", "") == f"dense784-{hidden}-10"
    assert to_number(dense[1]) == cl.param_count(cl.DenseNet(784, (hidden,))) >= net.param_count()
    assert to_number(dense[2]) == cl.dense_macs(784, hidden) + cl.dense_macs(hidden, 10)


def test_cnn_beats_the_same_budget_dense_network_beyond_the_seed_spread(site_dir):
    cnn, dense, _ = _model_rows(site_dir)
    c_mean, c_sd, c_worst, c_best = _acc_cells(cnn)
    d_mean, d_sd, d_worst, d_best = _acc_cells(dense)
    assert c_worst <= c_mean <= c_best and d_worst <= d_mean <= d_best
    assert c_mean >= 0.93, "the deeper CNN should reach at least 93% on MNIST test digits"
    assert c_mean - d_mean > 2 * max(c_sd, d_sd), "the gain is not clear of the spread between seeds"
    assert c_worst > d_best, "the worst CNN seed should beat the best dense seed"
    text = main_text(read_page(site_dir, "cnn_in_practice"))
    m = find(r"ahead of the dense network with the same parameter budget by " + NUMBER
             + r" percentage points ?, which is " + NUMBER + r" times the larger", text)
    assert _pct(m.group(1)) == pytest.approx(c_mean - d_mean, abs=0.0015)
    assert to_number(m.group(2)) > 2
    assert re.search(r"best dense seed\? yes\b", text)
    m = find(r"last five epochs the dense network’s validation accuracy moved by " + NUMBER, text)
    assert abs(to_number(m.group(1))) < 100 * (c_mean - d_mean) / 2, "the dense baseline was still learning"


def test_cnn_page_data_gradients_and_receptive_fields(site_dir):
    text = main_text(read_page(site_dir, "cnn_in_practice"))
    assert "train (4000, 1, 28, 28) validation (1000, 1, 28, 28) test (2000, 1, 28, 28)" in text
    m = find(r"analytic vs numeric gradient of W1 and W2: " + NUMBER, text)
    assert to_number(m.group(1)) < 1e-4
    fields = cl.receptive_field([(3, 1, 1, 1), (2, 2), (3, 1, 1, 1), (2, 2)])
    for name, rf in zip(["conv1", "pool1", "conv2", "pool2"], fields, strict=True):
        assert f"{name}: sees {rf.size} x {rf.size} pixels, neighbours {rf.jump} px apart" in text
    assert "block 2: relu (16, 14, 14), after pooling (16, 7, 7)" in text


# --- hyperparameters --------------------------------------------------------------------------

def _sweep_rows(site_dir):
    rows = {}
    for r in table_rows(read_page(site_dir, "hyperparameters")):
        if len(r) == 8 and r[0] in ("kernel size", "stride", "padding", "filters"):
            rows[r[0], int(r[1])] = {
                "output": r[2], "params": to_number(r[3]), "macs": to_number(r[4]),
                "seconds": to_number(r[5]),
                "mean": _pct(r[6].rstrip("%")), "sd": _pct(r[7].rstrip("%")),
            }
    return rows


def _block(sweep, value):
    base = dict(filters=8, kernel_size=3, stride=1, padding=1, pool=2)
    name = {"kernel size": "kernel_size"}.get(sweep, sweep)
    base[name] = value
    if name == "kernel_size":
        base["padding"] = value // 2
    return cl.ConvBlock(**base)


def test_every_sweep_setting_was_trained_and_its_cost_is_right(site_dir):
    rows = _sweep_rows(site_dir)
    expected = {("kernel size", k) for k in (1, 3, 7)} | {("stride", s) for s in (1, 2, 3)}
    expected |= {("padding", 0), ("padding", 1)} | {("filters", f) for f in (2, 4, 8, 16)}
    assert set(rows) == expected
    for (sweep, value), row in rows.items():
        net = cl.ConvNet((1, 28, 28), (_block(sweep, value),))
        assert row["params"] == net.param_count(), (sweep, value)
        assert row["macs"] == net.macs()["total"], (sweep, value)
        assert row["output"] == "x".join(map(str, net.shapes[0][1][1:]))
        assert 0.1 < row["mean"] <= 1 and 0 <= row["sd"] < 0.1 and row["seconds"] > 0
    # the base setting appears in every sweep with the same (shared) runs
    base = [rows["kernel size", 3], rows["stride", 1], rows["padding", 1], rows["filters", 8]]
    assert all(r["mean"] == base[0]["mean"] for r in base)


def test_sweeps_show_what_the_text_says(site_dir):
    rows = _sweep_rows(site_dir)
    assert rows["kernel size", 1]["mean"] < rows["kernel size", 3]["mean"]
    assert rows["stride", 3]["mean"] < rows["stride", 2]["mean"] < rows["stride", 1]["mean"]
    assert rows["filters", 2]["mean"] < rows["filters", 16]["mean"]
    text = main_text(read_page(site_dir, "hyperparameters"))

    def verdict(a, b):
        diff = abs(rows[a]["mean"] - rows[b]["mean"])
        return "larger" if diff > max(rows[a]["sd"], rows[b]["sd"]) else "not larger"

    m = find(r"against " + NUMBER + r" ?% with \S{0,30} ?\(a difference (not larger|larger) than",
             text)
    assert _pct(m.group(1)) == pytest.approx(rows["kernel size", 3]["mean"], abs=0.0006)
    assert m.group(2) == verdict(("kernel size", 1), ("kernel size", 3))
    m = find(r"a difference (not larger|larger) than the spread\. MNIST digits are centred", text)
    assert m.group(1) == verdict(("padding", 0), ("padding", 1))
    m = find(r"multiplies the multiply-adds by " + NUMBER, text)
    ratio = rows["kernel size", 7]["macs"] / rows["kernel size", 3]["macs"]
    assert to_number(m.group(1)) == pytest.approx(ratio, abs=0.051)


def test_choice_is_made_on_validation_and_tested_once(site_dir):
    rows = _sweep_rows(site_dir)
    text = main_text(read_page(site_dir, "hyperparameters"))
    best_key = max(rows, key=lambda k: rows[k]["mean"])
    best = rows[best_key]
    close = [k for k in rows if rows[k]["mean"] >= best["mean"] - best["sd"] - 1e-4]
    cheapest = min(rows[k]["macs"] for k in close)
    m = find(r"the rule picks (kernel size|stride|padding|filters) = (\d+) \( ?" + NUMBER
             + r" multiply-adds", text)
    chosen = (m.group(1), int(m.group(2)))
    assert chosen in close and rows[chosen]["macs"] == cheapest == to_number(m.group(3))
    m = find(r"whose test accuracy is " + NUMBER + r" ?% ± " + NUMBER + r" ?% over the random seeds", text)
    assert 0.8 < _pct(m.group(1)) <= 1
    m = find(r"(\d+) training runs \( ?(\d+) settings x (\d+) seeds", text)
    assert int(m.group(1)) == int(m.group(2)) * int(m.group(3)) and int(m.group(2)) == len(rows) - 3


# --- modern_layers -----------------------------------------------------------------------------

def test_modern_layers_checks_are_rounding_error(site_dir):
    text = main_text(read_page(site_dir, "modern_layers"))
    m = find(r"Checks on this page: .*? \( ?" + NUMBER + r" ?\), separable against its full kernel "
             r"\( ?" + NUMBER + r" ?\), the adjoint identity \( ?" + NUMBER + r" ?\), dilation against "
             r"a sparse kernel \( ?" + NUMBER + r" ?\) and average pooling against a strided "
             r"convolution \( ?" + NUMBER + r" ?\)", text)
    assert all(abs(to_number(v)) < 1e-10 for v in m.groups())
    assert "3x3 kernel, stride 2, interior values: [1. 2. 4.]" in text
    assert "4x4 kernel, stride 2, interior values: [1.]" in text
    assert "dilations (1, 1, 1): receptive field 7" in text
    assert "dilations (1, 2, 4): receptive field 15" in text


def test_modern_layers_summary_table_matches_conv_lib_arithmetic(site_dir):
    rows = {r[0]: r for r in table_rows(read_page(site_dir, "modern_layers")) if len(r) == 5}
    one = next(row for name, row in rows.items() if name.endswith(" conv") and "1" in name)
    assert to_number(one[3]) == cl.conv2d_param_count(256, 64, 1)
    assert to_number(one[4]) == cl.conv2d_macs(256, 64, 1, 56)
    sep = rows["depthwise-separable"]
    assert _ints(sep[3]) == [cl.depthwise_separable_param_count(32, 64, 3), cl.conv2d_param_count(32, 64, 3)]
    assert _ints(sep[4]) == [cl.depthwise_separable_macs(32, 64, 3, 56), cl.conv2d_macs(32, 64, 3, 56)]
    tconv = rows["transposed conv"]
    assert to_number(tconv[3]) == cl.conv2d_param_count(32, 64, 4)
    assert to_number(tconv[4]) == cl.conv_transpose2d_macs(64, 32, 4, 28)
    strided = rows["strided conv"]
    assert to_number(strided[3]) == cl.conv2d_param_count(16, 16, 3)
    assert to_number(strided[4]) == cl.conv2d_macs(16, 16, 3, 14)
    gap = rows["global average pooling"]
    assert _ints(gap[3]) == [cl.dense_param_count(16, 10), cl.dense_param_count(784, 10)]
    res = rows["residual connection"]
    assert _ints(res[3]) == [2 * cl.conv2d_param_count(64, 64, 3), 0]


def test_depthwise_measurement_and_residual_gradients_read_consistently(site_dir):
    text = main_text(read_page(site_dir, "modern_layers"))
    m = find(r"needs " + NUMBER + r" times fewer multiply-adds\. Measured here with conv_lib ?, it "
             r"(ran|took) " + NUMBER + r" times as (fast|long) as the full layer \( ?" + NUMBER
             + r" ms against " + NUMBER + r" ms ?\): a speed-up (smaller|larger) than", text)
    mac_factor, t_sep, t_full = to_number(m.group(1)), to_number(m.group(5)), to_number(m.group(6))
    time_factor = t_full / t_sep
    assert (m.group(2), m.group(4)) == (("ran", "fast") if time_factor >= 1 else ("took", "long"))
    shown = time_factor if time_factor >= 1 else 1 / time_factor
    assert to_number(m.group(3)) == pytest.approx(shown, rel=0.05, abs=0.06)
    word = m.group(7)
    expected = cl.conv2d_macs(32, 64, 3, 56) / cl.depthwise_separable_macs(32, 64, 3, 56)
    assert mac_factor == pytest.approx(expected, abs=0.051)
    # the word follows the shown (rounded) times
    assert word == ("smaller" if time_factor < mac_factor else "larger")
    # the explanation that follows is about the im2col path: the page must have used it
    x_shape = (4, 32, 56, 56)
    assert cl.choose_method(x_shape, (32, 1, 3, 3), dtype="float32") == "im2col"
    assert re.search(r"depthwise step on the\W+im2col\W+path", text)
    full = cl.choose_method(x_shape, (64, 32, 3, 3), dtype="float32")
    assert re.search(r"full layer on conv_lib ?’s\W+" + full + r"\W+path", text)
    m = find(r"gradient norm at the input is " + NUMBER + r" without skips and " + NUMBER
             + r" with them", text)
    plain, residual = to_number(m.group(1)), to_number(m.group(2))
    assert plain < 1e-2 < 1 < residual
    m = find(r"A block with zero weights returns \S{0,40} ?exactly \(largest difference " + NUMBER, text)
    assert to_number(m.group(1)) == 0


# --- in the browser -----------------------------------------------------------------------------

@pytest.mark.slow
@pytest.mark.parametrize("page", sorted(PAGES))
@pytest.mark.parametrize("viewport_name", ["desktop", "phone"])
def test_network_pages_fit_the_screen_and_show_their_figures(new_context, base_url, page,
                                                             viewport_name):
    viewport = DESKTOP if viewport_name == "desktop" else PHONE
    ctx = new_context(viewport=viewport, device_scale_factor=1,
                      is_mobile=viewport_name == "phone", has_touch=viewport_name == "phone")
    tab = ctx.new_page()
    errors: list[str] = []
    tab.on("console", lambda msg: errors.append(msg.text) if msg.type == "error" else None)
    try:
        tab.goto(page_url(base_url, f"chapters/{page}"))
        wait_for_math(tab)
        tab.wait_for_load_state("networkidle")
        ARTIFACTS.mkdir(exist_ok=True)
        tab.screenshot(path=str(ARTIFACTS / f"networks-{page}-{viewport_name}.png"), full_page=True)
        widths = tab.evaluate("() => [document.documentElement.scrollWidth, window.innerWidth]")
        images = tab.evaluate("""() => Array.from(document.querySelectorAll('article img'))
            .map(i => [i.naturalWidth, i.getBoundingClientRect().width, i.alt])""")
        cut_code = tab.evaluate("""() => Array.from(document.querySelectorAll('div.cell_input pre'))
            .filter(p => p.scrollWidth > p.clientWidth + 1)
            .map(p => p.textContent.split('\\n').sort((a, b) => b.length - a.length)[0].slice(0, 80))""")
    finally:
        tab.close()
    assert widths[0] <= widths[1], f"{page} at {viewport}: page {widths[0]}px wide, window {widths[1]}px"
    assert len(images) >= PAGES[page]
    for natural, shown, alt in images:
        assert natural > 0 and alt.strip(), (page, natural, alt)
        # figures are rendered at high DPI: never stretched beyond their pixels
        assert natural >= shown, (page, natural, shown)
    assert not errors, errors
    assert not ctx.offline_guard.blocked
    if viewport_name == "desktop":
        assert not cut_code, f"{page}: code lines wider than their cell at 1280 px: {cut_code}"
