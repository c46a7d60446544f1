"""The convolution explorer (``web/explorer/``) on the built site.

Its numbers are conv_lib's: the widget is driven through its JavaScript API
(``element.convExplorer.setState(...)``) over a grid of settings (random inputs, channels,
filters, bias, stride, padding, dilation, convolution and cross-correlation), and every
output it shows is compared with ``conv_lib`` run here. Its errors use conv_lib's words.
A handful of settings are made purely through the page (typing, select boxes, the
keyboard). Also: the step player and its aria-live announcements, axe-core, console errors,
no sideways overflow on a phone, and screenshots in ``test-artifacts/explorer-*.png``.

Needs what ``tests/test_website.py`` needs (a built book, Debian's chromium, Playwright,
``web/node_modules``); its fixtures (served site, browser, offline contexts) are reused.
"""

from __future__ import annotations

from collections import Counter

import numpy as np
import pytest
from test_website import ARTIFACTS, AXE_JS, DESKTOP, PHONE, page_url

import conv_lib
from conv_lib import conv2d, conv2d_param_count, convolve2d, correlate2d, get_kernel, output_size

# The fixtures base_url, browser and new_context (the served site, one Chromium, offline
# contexts) come from tests/conftest.py, by name.

pytestmark = pytest.mark.slow

CHAPTER = "chapters/step_by_step"
N_SETTINGS = 240
FIRST, LAYER = 0, 1  # the chapter's two explorers: the summary example, the layer


# --- conv_lib's answer for one setting of the widget ----------------------------------------

def dilate(kernel: np.ndarray, d: int) -> np.ndarray:
    """The kernel with d - 1 zeros between neighbouring taps (same result as dilation d)."""
    kh, kw = kernel.shape
    out = np.zeros((d * (kh - 1) + 1, d * (kw - 1) + 1))
    out[::d, ::d] = kernel
    return out


def reference(s: dict) -> tuple[np.ndarray | None, str | None]:
    """conv_lib's output ``(C_out, H_out, W_out)`` for a widget state, or its error message.

    Cross-correlation is ``conv2d`` (torch semantics); convolution is ``conv2d`` with the
    kernel flipped. With stride 1, "same" and "full" are ``correlate2d`` / ``convolve2d``
    (scipy semantics, which fix where the odd zero of an even kernel goes) applied to the
    dilated kernel, channel by channel; "same" with a larger stride is ``conv2d``'s error,
    and a kernel larger than the padded input is ``output_size``'s.
    """
    x = np.asarray(s["input"], dtype=float)
    w = np.asarray(s["weights"], dtype=float)
    b = None if s["bias"] is None else np.asarray(s["bias"], dtype=float)
    stride, padding, d = s["stride"], s["padding"], s["dilation"]
    flipped = s["mode"] == "convolution"
    w_used = w[..., ::-1, ::-1] if flipped else w
    (_, h, wd), (kh, kw) = x.shape, w.shape[2:]
    if padding == "same" and stride != 1:
        with pytest.raises(ValueError) as err:
            conv2d(x[None], w_used, b, stride=stride, padding="same", dilation=d)
        return None, str(err.value)
    if padding in ("same", "full") and stride == 1:
        one = convolve2d if flipped else correlate2d
        out = np.stack([sum(one(x[c], dilate(w[o, c], d), mode=padding) for c in range(x.shape[0]))
                        for o in range(w.shape[0])])
        if b is not None:
            out = out + b[:, None, None]
        if padding == "same" and not flipped:  # scipy and torch agree on the odd zero
            np.testing.assert_allclose(out, conv2d(x[None], w, b, padding="same", dilation=d)[0], atol=1e-9)
        return out, None
    pads = {"full": (d * (kh - 1), d * (kw - 1)), "valid": (0, 0)}.get(padding, (padding, padding))
    for n, k, p in ((h, kh, pads[0]), (wd, kw, pads[1])):
        try:
            output_size(n, k, stride=stride, padding=p, dilation=d)
        except ValueError as err:
            with pytest.raises(ValueError):  # conv2d refuses it too (in its own words)
                conv2d(x[None], w_used, b, stride=stride, padding=pads, dilation=d)
            return None, str(err)
    return conv2d(x[None], w_used, b, stride=stride, padding=pads, dilation=d)[0], None


# --- the grid of settings ---------------------------------------------------------------------

def settings_grid(n: int = N_SETTINGS, seed: int = 15) -> list[dict]:
    """``n`` random settings: every size, stride, padding, dilation and mode the widget
    offers; integer and real-valued inputs; one to three channels and filters; some bias."""
    rng = np.random.default_rng(seed)
    paddings = [0, 1, 2, 3, 5, "valid", "same", "same", "full"]
    out = []
    for i in range(n):
        cin = int(rng.integers(1, 4)) if i % 3 == 0 else 1
        cout = int(rng.integers(1, 4)) if i % 4 == 0 else 1
        h, w = (int(v) for v in rng.integers(1, 13, size=2))
        kh, kw = (int(v) for v in rng.integers(1, 6, size=2))
        real = i % 5 == 4
        def values(shape, lo, hi, real=real):
            if real:
                return rng.uniform(lo, hi, size=shape).tolist()
            return rng.integers(lo, hi + 1, size=shape).tolist()
        out.append({
            "input": values((cin, h, w), -9, 9),
            "weights": values((cout, cin, kh, kw), -3, 3),
            "bias": values((cout,), -5, 5) if rng.random() < 0.4 else None,
            "stride": int(rng.choice([1, 1, 1, 2, 3, 4])),
            "padding": paddings[int(rng.integers(len(paddings)))],
            "dilation": int(rng.choice([1, 1, 2, 3])),
            "mode": "convolution" if rng.random() < 0.5 else "correlation",
        })
    return out


# --- the page -------------------------------------------------------------------------------

def _open(ctx, base_url: str, errors: list[str]):
    page = ctx.new_page()
    page.on("console", lambda m: m.type == "error" and errors.append(m.text))
    page.on("pageerror", lambda e: errors.append(f"uncaught: {e}"))
    page.goto(page_url(base_url, CHAPTER))
    page.wait_for_function("() => document.querySelectorAll('.conv-explorer.ce-ready').length === 2")
    return page


@pytest.fixture
def chapter(new_context, base_url):
    """The chapter on a desktop; after the test, no console error may have been logged."""
    ctx = new_context(viewport=DESKTOP)
    errors: list[str] = []
    page = _open(ctx, base_url, errors)
    yield page
    page.close()
    assert not errors, f"JavaScript console errors: {errors}"
    assert not ctx.offline_guard.blocked, f"requests left the machine: {ctx.offline_guard.blocked}"


def explorer(page, which: int = FIRST):
    return page.locator(".conv-explorer").nth(which)


def shown(page, which: int = FIRST) -> dict:
    """What the explorer shows: output maps (from the cells), sizes, parameters, message."""
    return page.evaluate("""(which) => {
        const el = document.querySelectorAll('.conv-explorer')[which];
        const panel = el.querySelector('.ce-panel-output');
        const message = el.querySelector('.ce-message');
        return {
            maps: panel && panel.offsetParent !== null
                ? Array.from(panel.querySelectorAll('.ce-grid'),
                             g => Array.from(g.querySelectorAll('.ce-out'), c => Number(c.dataset.value)))
                : null,
            sizes: Array.from(el.querySelectorAll('.ce-out-size'), e => Number(e.textContent)),
            params: Number(el.querySelector('.ce-param-count').textContent),
            message: message.hidden ? null : el.querySelector('.ce-message-text').textContent,
            resultHidden: el.querySelector('.ce-result').hidden,
            api: {output: el.convExplorer.getOutput(), error: el.convExplorer.getError(),
                  info: el.convExplorer.getInfo(), state: el.convExplorer.getState()},
        };
    }""", which)


def check_shown(got: dict, s: dict) -> str:
    """Compare what the widget shows for setting ``s`` with conv_lib; return the case's kind."""
    want, error = reference(s)
    x, w = np.asarray(s["input"], dtype=float), np.asarray(s["weights"], dtype=float)
    params = conv2d_param_count(x.shape[0], w.shape[0], w.shape[2:], bias=s["bias"] is not None)
    assert got["params"] == params and got["api"]["info"]["params"] == params, (s, got["params"], params)
    if error is not None:
        assert got["message"] == error, f"{s}\nwidget: {got['message']}\nconv_lib: {error}"
        assert got["api"]["error"] == error and got["api"]["output"] is None
        assert got["maps"] is None and got["resultHidden"], f"a picture is shown for impossible settings {s}"
        return "error"
    assert got["message"] is None, f"{s}: unexpected message {got['message']}"
    output = np.asarray(got["api"]["output"], dtype=float)
    cells = np.asarray(got["maps"], dtype=float).reshape(want.shape)
    assert output.shape == want.shape, f"{s}: shape {output.shape}, conv_lib {want.shape}"
    assert got["sizes"] == list(want.shape[1:]), (
        f"{s}: the formula gives {got['sizes']}, conv_lib {want.shape[1:]}")
    if np.array_equal(x, np.round(x)) and np.array_equal(w, np.round(w)):
        assert np.array_equal(output, want) and np.array_equal(cells, want), f"{s}:\n{output}\n!=\n{want}"
    else:
        np.testing.assert_allclose(output, want, rtol=1e-12, atol=1e-12, err_msg=str(s))
        np.testing.assert_allclose(cells, want, rtol=1e-12, atol=1e-12, err_msg=str(s))
    return "output"


# --- tests ------------------------------------------------------------------------------------

def test_the_chapter_embeds_two_explorers_served_by_the_site(chapter, base_url, site_dir):
    scripts = chapter.eval_on_selector_all("script[src*='conv-explorer']", "ss => ss.map(s => s.src)")
    assert len(scripts) == 2 and all(src.startswith(base_url) for src in scripts), scripts
    # Pages without an explorer do not load it.
    assert "conv-explorer" not in (site_dir / "intro.html").read_text(encoding="utf-8")
    assert chapter.locator(".conv-explorer.ce-ready").count() == 2
    # They sit in the sections the chapter promises.
    sections = chapter.evaluate("""() => Array.from(document.querySelectorAll('.conv-explorer'),
        el => el.closest('section').querySelector('h2').textContent)""")
    assert "The sliding window, animated" in sections[0] and "Output size" in sections[1], sections


def test_presets_hold_conv_libs_numbers(chapter):
    got = shown(chapter, FIRST)
    state = got["api"]["state"]
    assert np.array_equal(state["input"][0], conv_lib.SUMMARY_IMAGE)
    assert np.array_equal(state["weights"][0][0], conv_lib.SUMMARY_KERNEL)
    assert state["mode"] == "convolution" and state["padding"] == "valid"
    # The formula with the numbers filled in, for both explorers.
    formulas = chapter.eval_on_selector_all(".conv-explorer .ce-formula", "fs => fs.map(f => f.textContent)")
    floor = "\u230a({n} + 2\u00b7{p} \u2212 {d}\u00b7({k} \u2212 1) \u2212 1) / {s}\u230b + 1 = {out}"
    assert floor.format(n=5, p=0, d=1, k=3, s=1, out=output_size(5, 3)) in formulas[0], formulas[0]
    assert floor.format(n=5, p=1, d=1, k=3, s=2, out=output_size(5, 3, stride=2, padding=1)) in formulas[1]
    assert "C_out\u00b7(C_in\u00b7kH\u00b7kW) + C_out = 2\u00b7(3\u00b73\u00b73) + 2 = 56" in formulas[1]
    want = convolve2d(conv_lib.SUMMARY_IMAGE, conv_lib.SUMMARY_KERNEL, mode="valid")
    assert np.array_equal(np.asarray(got["maps"][0]).reshape(want.shape), want)
    for name, kernel in [("sobel", get_kernel("sobel_x")), ("box", get_kernel("box", 3))]:
        state = chapter.evaluate("""(name) => {
            const api = document.querySelector('.conv-explorer').convExplorer;
            api.loadPreset(name); return api.getState(); }""", name)
        np.testing.assert_array_equal(np.asarray(state["weights"][0][0]), kernel, err_msg=name)
        check_shown(shown(chapter, FIRST), state)
    layer = shown(chapter, LAYER)
    s = layer["api"]["state"]
    assert np.asarray(s["input"]).shape == (3, 5, 5) and np.asarray(s["weights"]).shape == (2, 3, 3, 3)
    assert s["bias"] is not None and s["stride"] == 2 and s["padding"] == 1
    assert check_shown(layer, s) == "output"
    assert layer["params"] == conv2d_param_count(3, 2, 3) == 56
    # Random integers keep the sizes and give new integer values.
    before = chapter.evaluate("() => document.querySelectorAll('.conv-explorer')[1].convExplorer.getState()")
    after = chapter.evaluate("""() => {
        const api = document.querySelectorAll('.conv-explorer')[1].convExplorer;
        api.loadPreset('random'); return api.getState(); }""")
    assert np.asarray(after["input"]).shape == np.asarray(before["input"]).shape
    assert after["input"] != before["input"]
    assert np.array_equal(np.asarray(after["input"]), np.round(after["input"]))
    assert check_shown(shown(chapter, LAYER), after) == "output"


def test_outputs_match_conv_lib_over_a_grid_of_settings(chapter):
    grid = settings_grid()
    kinds: Counter = Counter()
    for s in grid:
        chapter.evaluate("(s) => document.querySelector('.conv-explorer').convExplorer.setState(s)", s)
        kinds[check_shown(shown(chapter, FIRST), s)] += 1
        kinds["same, stride 1"] += s["padding"] == "same" and s["stride"] == 1
        kinds["even kernel, same"] += (s["padding"] == "same" and s["stride"] == 1
                                       and any(k % 2 == 0 for k in np.asarray(s["weights"]).shape[2:]))
        kinds["several channels or filters"] += np.asarray(s["weights"]).shape[:2] != (1, 1)
        kinds["real-valued"] += not np.array_equal(np.asarray(s["input"]), np.round(s["input"]))
        kinds["dilation > 1"] += s["dilation"] > 1
        kinds["convolution"] += s["mode"] == "convolution"
    print(f"\nexplorer vs conv_lib: {len(grid)} settings compared: {dict(kinds)}")
    assert kinds["output"] + kinds["error"] == len(grid) >= 200
    for kind, least in [("error", 10), ("same, stride 1", 20), ("even kernel, same", 10),
                        ("several channels or filters", 40), ("real-valued", 30), ("dilation > 1", 40),
                        ("convolution", 80), ("output", 150)]:
        assert kinds[kind] >= least, f"the grid has only {kinds[kind]} settings of kind {kind!r}"


def test_the_api_refuses_malformed_settings(chapter):
    message = chapter.evaluate("""() => { try {
        document.querySelector('.conv-explorer').convExplorer.setState({stride: 0}); return null;
    } catch (e) { return e.message; } }""")
    assert message == "stride: got 0; expected an integer from 1 to 4"
    message = chapter.evaluate("""() => { try {
        document.querySelector('.conv-explorer').convExplorer.setState({padding: 'half'}); return null;
    } catch (e) { return e.message; } }""")
    assert message.startswith('padding: got "half"; expected')


def _cell(page, label: str):
    return explorer(page, FIRST).get_by_label(label, exact=True)


def _type(locator, text: str) -> None:
    """Replace a field's text the way a reader does: focus, select all, type."""
    locator.focus()
    locator.press("Control+a")
    locator.press_sequentially(text)


def test_settings_made_through_the_page(chapter):
    """Typing into cells and fields, choosing from select boxes, arrow keys on the radios:
    each time the cells shown equal conv_lib's answer for what was typed."""
    image = np.array(conv_lib.SUMMARY_IMAGE, dtype=float)
    kernel = np.array(conv_lib.SUMMARY_KERNEL, dtype=float)
    ex = explorer(chapter, FIRST)

    def cells() -> np.ndarray:
        got = shown(chapter, FIRST)
        assert got["message"] is None, got["message"]
        return np.asarray(got["maps"][0], dtype=float).reshape(got["sizes"])

    _type(_cell(chapter, "Input row 0, column 0"), "10")
    image[0, 0] = 10
    assert np.array_equal(cells(), convolve2d(image, kernel, mode="valid"))

    _type(_cell(chapter, "Kernel row 1, column 2"), "-1/2")
    kernel[1, 2] = -0.5
    assert np.array_equal(cells(), convolve2d(image, kernel, mode="valid"))

    ex.get_by_label("Padding").select_option("same")
    assert np.array_equal(cells(), convolve2d(image, kernel, mode="same"))

    radio = ex.get_by_label("Convolution (kernel flipped)")
    radio.focus()
    chapter.keyboard.press("ArrowDown")  # moves to, and checks, "Cross-correlation"
    assert ex.get_by_label("Cross-correlation").is_checked()
    assert np.array_equal(cells(), correlate2d(image, kernel, mode="same"))

    ex.get_by_label("Padding").select_option("1")
    _type(ex.get_by_label("Stride"), "2")
    want = conv2d(image[None, None], kernel[None, None], stride=2, padding=1)[0, 0]
    assert np.array_equal(cells(), want)

    _type(ex.get_by_label("Stride"), "1")
    _type(ex.get_by_label("Dilation"), "2")
    ex.get_by_label("Padding").select_option("full")
    assert np.array_equal(cells(), correlate2d(image, dilate(kernel, 2), mode="full"))

    _type(ex.get_by_label("Dilation"), "1")
    _type(ex.get_by_label("Kernel rows"), "2")  # keeps the kernel's top two rows: an even kernel
    ex.get_by_label("Padding").select_option("same")
    assert np.array_equal(cells(), correlate2d(image, kernel[:2], mode="same"))


def test_impossible_settings_and_bad_values_give_conv_libs_message(chapter):
    ex = explorer(chapter, FIRST)

    def message() -> str | None:
        got = shown(chapter, FIRST)
        if got["message"] is not None:
            assert got["maps"] is None and got["resultHidden"], "a picture next to an error message"
            assert not ex.locator(".ce-player").is_visible()
        return got["message"]

    ex.get_by_label("Padding").select_option("same")
    _type(ex.get_by_label("Stride"), "2")
    with pytest.raises(ValueError) as err:
        conv2d(np.ones((1, 1, 5, 5)), np.ones((1, 1, 3, 3)), stride=2, padding="same")
    assert message() == str(err.value)
    assert "padding: got 'same' with stride (2, 2)" in ex.inner_text()

    _type(ex.get_by_label("Stride"), "1")
    ex.get_by_label("Padding").select_option("0")
    _type(ex.get_by_label("Input rows"), "2")
    _type(ex.get_by_label("Kernel rows"), "5")
    with pytest.raises(ValueError) as err:
        output_size(2, 5, stride=1, padding=0)
    assert message() == str(err.value) == (
        "kernel: got 5; expected at most the padded input length n + 2*padding = 2 + 2*0 = 2")
    ex.get_by_label("Padding").select_option("2")  # 2 + 2*2 = 6 >= 5: fits again
    assert message() is None

    _type(ex.get_by_label("Dilation"), "3")  # spans 13 > 6
    with pytest.raises(ValueError) as err:
        output_size(2, 5, stride=1, padding=2, dilation=3)
    assert message() == str(err.value)

    _type(ex.get_by_label("Dilation"), "1")
    cell = _cell(chapter, "Input row 1, column 1")
    _type(cell, "abc")
    assert cell.get_attribute("aria-invalid") == "true"
    assert message() == 'Input row 1, column 1: got "abc"; expected a number (like 3, -1.5 or 1/9)'
    _type(cell, "7")
    assert cell.get_attribute("aria-invalid") is None and message() is None

    _type(ex.get_by_label("Input rows"), "13")
    assert message() == "Input rows: got 13; expected an integer from 1 to 12"
    _type(ex.get_by_label("Input rows"), "5")
    assert message() is None


def _live(page) -> str:
    return explorer(page, FIRST).locator(".ce-live").inner_text()


def test_keyboard_steps_play_and_announcements(chapter):
    ex = explorer(chapter, FIRST)
    want = convolve2d(conv_lib.SUMMARY_IMAGE, conv_lib.SUMMARY_KERNEL, mode="valid")
    live = ex.locator(".ce-live")
    assert live.get_attribute("aria-live") == "polite"
    slider = ex.get_by_label("Step", exact=True)
    slider.focus()
    chapter.keyboard.press("End")
    assert _live(chapter).startswith(f"Step 9 of 9: output (2, 2) = {want[2, 2]:g}".replace("-", "\u2212"))
    chapter.keyboard.press("Home")
    chapter.keyboard.press("ArrowRight")
    assert _live(chapter).startswith(f"Step 2 of 9: output (0, 1) = {want[0, 1]:g}".replace("-", "\u2212"))
    assert ex.locator(".ce-out.ce-current").get_attribute("data-value") == f"{want[0, 1]:g}"
    assert "rows 0 to 2, columns 1 to 3" in _live(chapter)

    # Tab from the slider backwards reaches the step buttons; Enter and Space press them.
    chapter.keyboard.press("Shift+Tab")
    chapter.keyboard.press("Shift+Tab")
    assert chapter.evaluate("() => document.activeElement.getAttribute('aria-label')") == "Next step"
    chapter.keyboard.press("Enter")
    assert _live(chapter).startswith("Step 3 of 9")
    chapter.keyboard.press("Shift+Tab")
    assert chapter.evaluate("() => document.activeElement.textContent") == "Play"
    chapter.keyboard.press("Space")
    chapter.wait_for_function(
        "() => document.querySelector('.conv-explorer .ce-live').textContent.startsWith('Step 5 of 9')",
        timeout=10_000)
    assert chapter.evaluate("() => document.activeElement.textContent") == "Pause"
    chapter.keyboard.press("Space")
    paused = _live(chapter)
    chapter.wait_for_timeout(1500)
    assert _live(chapter) == paused, "the steps kept changing after Pause"

    # The arrow keys move between the cells of a grid.
    _cell(chapter, "Input row 0, column 0").focus()
    chapter.keyboard.press("ArrowDown")
    chapter.keyboard.press("End")
    chapter.keyboard.press("ArrowRight")
    focused = chapter.evaluate("() => document.activeElement.getAttribute('aria-label')")
    assert focused == "Input row 1, column 1"


def _axe(page, selector: str) -> list[dict]:
    page.add_script_tag(path=str(AXE_JS))
    result = page.evaluate("(sel) => axe.run(sel, {resultTypes: ['violations']})", selector)
    return [{"id": v["id"], "impact": v["impact"], "nodes": [n["target"] for n in v["nodes"]][:3]}
            for v in result["violations"] if v["impact"] in ("serious", "critical")]


@pytest.mark.parametrize("scheme", ["light", "dark"])
def test_accessible_names_and_axe(new_context, base_url, scheme):
    ctx = new_context(viewport=DESKTOP, color_scheme=scheme)
    errors: list[str] = []
    page = _open(ctx, base_url, errors)
    try:
        unnamed = page.evaluate("""() => Array.from(document.querySelectorAll(
                '.conv-explorer input, .conv-explorer select, .conv-explorer button'))
            .filter(c => !(c.labels && c.labels.length) && !c.getAttribute('aria-label')
                         && !(c.tagName === 'BUTTON' && c.textContent.trim()))
            .map(c => c.outerHTML.slice(0, 80))""")
        assert not unnamed, f"controls without a label: {unnamed}"
        assert not _axe(page, ".conv-explorer")
        # Also with an error shown, and with several channels and filters.
        page.evaluate("""() => { const [a, b] = document.querySelectorAll('.conv-explorer');
            a.convExplorer.setState({input: [[1, 2], [3, 4]], kernel: [[1, 1, 1], [1, 1, 1], [1, 1, 1]],
                                     padding: 0});
            b.convExplorer.goTo(7); }""")
        assert not _axe(page, ".conv-explorer")
    finally:
        page.close()
    assert not errors, errors


def snap(page, locator, path) -> None:
    """Screenshot of one explorer as the reader sees it, below the page's sticky header: the
    window is made tall enough for the whole explorer, then restored."""
    viewport = page.viewport_size
    height = int(locator.bounding_box()["height"])
    page.set_viewport_size({"width": viewport["width"], "height": height + 160})
    locator.evaluate("el => el.scrollIntoView({block: 'end'})")
    box = locator.bounding_box()
    page.screenshot(path=str(path), clip={"x": 0, "y": max(box["y"] - 8, 0), "width": viewport["width"],
                                          "height": min(box["height"] + 16, height + 160)})
    page.set_viewport_size(viewport)


@pytest.mark.parametrize("viewport_name", ["desktop", "phone"])
def test_screenshots_and_no_horizontal_overflow(new_context, base_url, viewport_name):
    phone = viewport_name == "phone"
    ctx = new_context(viewport=PHONE if phone else DESKTOP, device_scale_factor=1,
                      is_mobile=phone, has_touch=phone)
    errors: list[str] = []
    page = _open(ctx, base_url, errors)
    ARTIFACTS.mkdir(exist_ok=True)
    try:
        widths = "() => [document.documentElement.scrollWidth, window.innerWidth]"
        for which, name in [(FIRST, "summary"), (LAYER, "layer")]:
            explorer(page, which).get_by_label("Step", exact=True).focus()
            page.keyboard.press("ArrowRight")
            snap(page, explorer(page, which), ARTIFACTS / f"explorer-{name}-{viewport_name}.png")
            w = page.evaluate(widths)
            assert w[0] <= w[1], f"{name} at {viewport_name}: page {w[0]}px wide, window {w[1]}px"
        # The largest settings: a 12x12 input, 3 channels, 3 filters of 5x5, 'full' padding, dilation 3.
        rng = np.random.default_rng(0)
        big = {"input": rng.integers(-9, 10, (3, 12, 12)).tolist(),
               "weights": rng.integers(-3, 4, (3, 3, 5, 5)).tolist(), "bias": [1, 2, 3],
               "padding": "full", "dilation": 3, "stride": 1, "mode": "correlation"}
        page.evaluate("(s) => document.querySelectorAll('.conv-explorer')[1].convExplorer.setState(s)", big)
        check_shown(shown(page, LAYER), big)
        snap(page, explorer(page, LAYER), ARTIFACTS / f"explorer-largest-{viewport_name}.png")
        w = page.evaluate(widths)
        assert w[0] <= w[1], f"largest settings at {viewport_name}: page {w[0]}px wide, window {w[1]}px"
        page.evaluate("""() => document.querySelector('.conv-explorer').convExplorer.setState(
            {input: [[1, 2], [3, 4]], kernel: [[1, 1, 1], [1, 1, 1], [1, 1, 1]], padding: 0})""")
        snap(page, explorer(page, FIRST), ARTIFACTS / f"explorer-error-{viewport_name}.png")
        w = page.evaluate(widths)
        assert w[0] <= w[1], f"error message at {viewport_name}: page {w[0]}px wide, window {w[1]}px"
    finally:
        page.close()
    assert not errors, errors
