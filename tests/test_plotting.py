"""Unit tests of conv_lib.plotting: the figures show what conv_lib computed."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt
import numpy as np
import pytest
from matplotlib.patches import Rectangle
from scipy.signal import convolve2d as scipy_convolve2d
from scipy.signal import correlate2d as scipy_correlate2d

from conv_lib.plotting import (
    COURSE_STYLE,
    animation_html,
    draw_grid,
    feature_map_so_far,
    format_number,
    jshtml_frame_count,
    plot_conv_geometry,
    plot_kernel_flip,
    plot_window_step,
    sliding_window_animation,
    use_course_style,
    window_cells,
)
from conv_lib.stepwise import walk_windows

IMAGE = np.array([[1, 2, 3, 0], [4, 5, 6, 0], [7, 8, 9, 0], [0, 0, 0, 1]])
KERNEL = np.array([[1, 0, -1], [2, 0, -2], [1, 0, -1]])


@pytest.fixture(autouse=True)
def _close_figures():
    yield
    plt.close("all")


def _texts(ax) -> list[str]:
    return [t.get_text() for t in ax.texts]


def _outlined_cells(ax, color: str) -> set[tuple[int, int]]:
    """Cells with an outline (no fill) of ``color``: what draw_grid highlights."""
    rgba = matplotlib.colors.to_rgba(color)
    cells = set()
    for patch in ax.patches:
        if isinstance(patch, Rectangle) and patch.get_fill() is False or (
            isinstance(patch, Rectangle) and patch.get_facecolor()[3] == 0
        ):
            if np.allclose(patch.get_edgecolor(), rgba):
                x, y = patch.get_xy()
                cells.add((round(y + 0.5), round(x + 0.5)))
    return cells


def test_use_course_style_sets_white_backgrounds():
    use_course_style()
    for key in ("figure.facecolor", "axes.facecolor", "savefig.facecolor"):
        assert matplotlib.rcParams[key] == "white" == COURSE_STYLE[key]


@pytest.mark.parametrize(
    ("value", "text"),
    [(3, "3"), (3.0, "3"), (-0.0, "0"), (-15, "-15"), (0.5, "0.5"), (1 / 3, "0.333"), (np.nan, ""),
     ("a", "a")],
)
def test_format_number(value, text):
    assert format_number(value) == text


def test_draw_grid_shows_every_value_in_row_major_order():
    fig, ax = plt.subplots()
    values = np.arange(12).reshape(3, 4) - 5
    draw_grid(ax, values)
    assert _texts(ax) == [str(v) for v in values.ravel()]
    positions = [t.get_position() for t in ax.texts]
    assert positions[:5] == [(0, 0), (1, 0), (2, 0), (3, 0), (0, 1)]  # (x=col, y=row)
    assert ax.get_ylim() == (2.5, -0.5)  # row 0 at the top


def test_draw_grid_highlight_and_shade():
    fig, ax = plt.subplots()
    shade = np.zeros((3, 3), dtype=bool)
    shade[0] = True
    draw_grid(ax, np.ones((3, 3)), highlight=[(1, 1), (2, 0)], highlight_color="#ff0000", shade=shade)
    assert _outlined_cells(ax, "#ff0000") == {(1, 1), (2, 0)}
    with pytest.raises(ValueError, match="highlight"):
        draw_grid(ax, np.ones((2, 2)), highlight=[(2, 0)])
    with pytest.raises(ValueError, match="values"):
        draw_grid(ax, np.ones(3))
    with pytest.raises(ValueError, match="shade"):
        draw_grid(ax, np.ones((2, 2)), shade=np.ones((3, 3), dtype=bool))


def test_draw_grid_index_offset_labels():
    fig, ax = plt.subplots()
    draw_grid(ax, np.zeros((3, 3)), index_offset=(-1, -1))
    assert [t.get_text() for t in ax.get_xticklabels()] == ["-1", "0", "1"]


def test_window_cells_follow_dilation():
    walk = walk_windows(np.zeros((7, 7)), np.ones((3, 3)), dilation=2, stride=2)
    step = walk[1]  # output (0, 1): columns start at 2
    cells = window_cells(step)
    assert cells[:3] == [(0, 2), (0, 4), (0, 6)]
    assert len(cells) == 9 and cells[-1] == (4, 6)


def test_feature_map_so_far_fills_row_major():
    walk = walk_windows(IMAGE, KERNEL)
    partial = feature_map_so_far(walk, 2)
    expected = scipy_correlate2d(IMAGE, KERNEL, mode="valid")
    assert partial.shape == expected.shape == (2, 2)
    assert np.array_equal(partial.ravel()[:3], expected.ravel()[:3])
    assert np.isnan(partial[1, 1])
    assert np.array_equal(feature_map_so_far(walk, -1), expected)


def test_plot_window_step_shows_window_products_and_sum():
    walk = walk_windows(IMAGE, KERNEL, padding=1, flip=True)
    fig = plot_window_step(walk, 5)
    ax_in, ax_k, ax_p, ax_out = fig.axes
    step = walk[5]
    # The input panel shows the padded image and outlines the window's cells.
    assert _texts(ax_in) == [format_number(v) for v in walk.padded_image.ravel()]
    assert _outlined_cells(ax_in, "#d62728") == set(window_cells(step))
    # The kernel panel shows the flipped kernel; products are window * kernel.
    assert _texts(ax_k) == [format_number(v) for v in KERNEL[::-1, ::-1].ravel()]
    assert _texts(ax_p) == [format_number(v) for v in (step.window * KERNEL[::-1, ::-1]).ravel()]
    full = scipy_convolve2d(IMAGE, KERNEL, mode="same")
    assert ax_p.get_xlabel() == f"sum = {format_number(full[step.index])}"
    # The output panel holds the first six values and highlights the current one.
    texts = _texts(ax_out)
    assert texts[:6] == [format_number(v) for v in full.ravel()[:6]]
    assert all(t == "" for t in texts[6:])
    assert _outlined_cells(ax_out, "#1f77b4") == {step.index}


def test_animation_frames_and_final_feature_map():
    anim = sliding_window_animation(IMAGE, KERNEL, padding="same", flip=True)
    expected = scipy_convolve2d(IMAGE, KERNEL, mode="same")
    assert len(anim.walk) == expected.size == 16
    fig = anim._fig
    anim._func(len(anim.walk) - 1)  # draw the last frame
    ax_out = fig.axes[3]
    assert _texts(ax_out) == [format_number(v) for v in expected.ravel()]
    html = animation_html(anim, alt="A 4 by 4 image & a kernel")
    assert jshtml_frame_count(html) == 16
    assert 'alt="A 4 by 4 image &amp; a kernel"' in html
    assert not plt.fignum_exists(fig.number)  # closed: no stray still image


def test_animation_refuses_too_many_frames():
    with pytest.raises(ValueError, match="max_frames"):
        sliding_window_animation(np.zeros((8, 8)), np.ones((3, 3)))


def test_animation_html_needs_alt():
    anim = sliding_window_animation(np.ones((3, 3)), np.ones((2, 2)))
    with pytest.raises(ValueError, match="alt"):
        animation_html(anim, alt="  ")
    assert jshtml_frame_count(animation_html(anim, alt="ok")) == 4


def test_jshtml_frame_count_without_animation():
    assert jshtml_frame_count("<p>no animation</p>") == 0


def test_plot_kernel_flip_rotates_180_degrees():
    letters = np.array(list("abcdefghi")).reshape(3, 3)
    fig = plot_kernel_flip(letters)
    left, right = fig.axes
    assert _texts(left) == list("abcdefghi")
    assert _texts(right) == list("ihgfedcba")
    assert [t.get_text() for t in right.get_yticklabels()] == ["-1", "0", "1"]
    # the kernel's offsets are a, b: m, n index the image in the one-page summary's formula
    assert (left.get_title(), right.get_title()) == ("K(a, b)", "flipped: K(-a, -b)")


@pytest.mark.parametrize(
    ("n", "k", "s", "p", "d", "pos", "out"),
    [(5, 3, 1, 0, 1, (0, 0), 3), (5, 3, 2, 1, 1, (1, 1), 3), (5, 3, 1, 2, 1, (6, 6), 7),
     (7, 3, 1, 0, 2, (2, 1), 3)],
)
def test_plot_conv_geometry(n, k, s, p, d, pos, out):
    fig = plot_conv_geometry(n, k, stride=s, padding=p, dilation=d, position=pos)
    ax_in, ax_out = fig.axes
    assert len(ax_in.texts) == (n + 2 * p) ** 2
    assert len(ax_out.texts) == out * out
    top, left = pos[0] * s, pos[1] * s
    expected = {(top + d * a, left + d * b) for a in range(k) for b in range(k)}
    assert _outlined_cells(ax_in, "#d62728") == expected
    assert _outlined_cells(ax_out, "#1f77b4") == {pos}
    with pytest.raises(ValueError, match="position"):
        plot_conv_geometry(n, k, stride=s, padding=p, dilation=d, position=(out, 0))


def test_plot_window_step_custom_titles():
    walk = walk_windows(np.ones((2, 2)), np.ones((2, 2)), padding="full", flip=True)
    fig = plot_window_step(walk, 0, titles=["g", "w", "p", "dx"], output_symbol="dL/dx")
    assert [ax.get_title() for ax in fig.axes] == ["g", "w", "p", "dx"]
    assert fig.axes[3].get_xlabel() == "dL/dx[0, 0] = 1"
    with pytest.raises(ValueError, match="titles"):
        plot_window_step(walk, 0, titles=["only one"])
