"""Figures and animations for the chapters, drawn from conv_lib's own computations.

All figures use :func:`use_course_style`: explicit white figure and axes backgrounds, so
figures stay readable on the website's dark theme too.

Nothing here computes a convolution itself: the window positions, products and sums come
from :func:`conv_lib.walk_windows` and sizes from :func:`conv_lib.output_size`; this module
only draws them.

Functions
---------
use_course_style()
    Course-wide matplotlib settings.
format_number(value)
    Short text for one grid cell (``3``, ``-0.5``, ``0.333``).
draw_grid(ax, values, ...)
    A 2-D array as a grid of numbered cells, with optional highlighted and shaded cells.
window_cells(step)
    The ``(row, col)`` cells of the padded input covered by one window step.
feature_map_so_far(walk, upto)
    The feature map after the first steps of a walk (NaN where not computed yet).
plot_window_step(walk, step)
    One step of the sliding window: input window, kernel, products, sum, output cell.
sliding_window_animation(image, kernel, ...)
    The whole slide as a :class:`matplotlib.animation.FuncAnimation`.
animation_html(anim, alt, ...)
    Self-contained JavaScript/HTML for an animation (no kernel needed), with alt text.
jshtml_frame_count(html)
    Number of frames embedded in such HTML.
plot_kernel_flip(kernel)
    A kernel and its 180-degree rotation, with centred offsets.
plot_conv_geometry(in_size, kernel_size, ...)
    Input (with its zero padding), one window's footprint, and the output grid.
"""

from __future__ import annotations

import html as _html
import re
from collections.abc import Iterable, Sequence
from typing import Any

import matplotlib as mpl
import matplotlib.pyplot as plt
import numpy as np
from matplotlib.animation import FuncAnimation
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.patches import Rectangle

__all__ = [
    "use_course_style",
    "format_number",
    "draw_grid",
    "window_cells",
    "feature_map_so_far",
    "plot_window_step",
    "sliding_window_animation",
    "animation_html",
    "jshtml_frame_count",
    "plot_kernel_flip",
    "plot_conv_geometry",
    "HIGHLIGHT_COLOR",
    "OUTPUT_COLOR",
    "PADDING_COLOR",
]

COURSE_STYLE = {
    "figure.facecolor": "white",
    "axes.facecolor": "white",
    "savefig.facecolor": "white",
    "figure.dpi": 100,
    "savefig.dpi": 100,
    # Text at least as large as the page's body text once a figure is scaled to the
    # column (about 800 px on a desktop): 13 pt on a figure 8 inches wide shows at ~18 px.
    "font.size": 13,
    "axes.titlesize": 13,
    "axes.labelsize": 13,
    "xtick.labelsize": 12,
    "ytick.labelsize": 12,
    "legend.fontsize": 12,
    "figure.titlesize": 14,
    "image.cmap": "gray",
    "animation.html": "jshtml",
    "animation.embed_limit": 20.0,
}

#: Colour of the current window (input side).
HIGHLIGHT_COLOR = "#d62728"
#: Colour of the output cell being written.
OUTPUT_COLOR = "#1f77b4"
#: Background of zero-padding cells.
PADDING_COLOR = "#d9d9d9"


def use_course_style() -> None:
    """Apply the course's matplotlib settings (call once at the top of a chapter).

    In a notebook (IPython's inline backend) figures are also rendered at twice the pixel
    density ("retina"), shown at their normal size: sharp on high-DPI screens.
    """
    mpl.rcParams.update(COURSE_STYLE)
    try:
        from IPython import get_ipython
        from matplotlib_inline.backend_inline import set_matplotlib_formats
    except ImportError:  # pragma: no cover - IPython is part of the book environment
        return
    if get_ipython() is not None:
        set_matplotlib_formats("retina")


def format_number(value: Any) -> str:
    """Short text for one grid cell.

    Integers (and floats with an integer value) print without a decimal point, other
    floats with at most three significant digits, NaN as an empty string, strings as they
    are. ``-0.0`` prints as ``0``.

    Parameters
    ----------
    value : number or str

    Returns
    -------
    str
    """
    if isinstance(value, (str, np.str_)):
        return str(value)
    v = float(value)
    if np.isnan(v):
        return ""
    if v.is_integer():
        return str(int(v))
    return f"{v:.3g}"


def _as_pair(value: int | Sequence[int], name: str) -> tuple[int, int]:
    if isinstance(value, (int, np.integer)):
        return int(value), int(value)
    pair = tuple(int(v) for v in value)
    if len(pair) != 2:
        raise ValueError(f"{name}: got {value!r}; expected an int or a pair of ints")
    return pair  # type: ignore[return-value]


def draw_grid(
    ax: Axes,
    values: Any,
    *,
    title: str | None = None,
    highlight: Iterable[tuple[int, int]] | None = None,
    highlight_color: str = HIGHLIGHT_COLOR,
    shade: Any = None,
    shade_color: str = PADDING_COLOR,
    fontsize: float | None = None,
    show_indices: bool = True,
    index_offset: tuple[int, int] = (0, 0),
) -> Axes:
    """Draw a 2-D array as a grid of cells, each labelled with its value.

    Parameters
    ----------
    ax : matplotlib.axes.Axes
        Where to draw; cleared first.
    values : array_like, shape (H, W)
        Numbers (NaN cells are left blank) or strings.
    title : str, optional
        Axes title.
    highlight : iterable of (row, col), optional
        Cells filled with a translucent ``highlight_color`` and outlined.
    highlight_color : str
        Colour for ``highlight``.
    shade : array_like of bool, shape (H, W), optional
        Cells drawn with a grey background (zero padding).
    shade_color : str
        Background colour for ``shade``.
    fontsize : float, optional
        Size of the cell labels; by default chosen from the grid size.
    show_indices : bool
        Label rows and columns with their indices (0-based, plus ``index_offset``).
    index_offset : (int, int)
        Added to the row and column tick labels (e.g. ``(-1, -1)`` for centred kernel
        offsets, or ``(-p, -p)`` to keep the unpadded image's indices on a padded grid).

    Returns
    -------
    matplotlib.axes.Axes
        ``ax``; the cell labels are ``ax.texts`` in row-major order.
    """
    arr = np.asarray(values)
    if arr.ndim != 2:
        raise ValueError(f"values: got an array of shape {arr.shape}; expected a 2-D array")
    h, w = arr.shape
    ax.clear()
    ax.set_facecolor("white")
    if shade is not None:
        mask = np.asarray(shade, dtype=bool)
        if mask.shape != arr.shape:
            raise ValueError(f"shade: got shape {mask.shape}; expected the shape of values {arr.shape}")
        for r, c in zip(*np.nonzero(mask), strict=True):
            ax.add_patch(Rectangle((c - 0.5, r - 0.5), 1, 1, facecolor=shade_color, edgecolor="none",
                                   zorder=0))
    cells = [] if highlight is None else [(int(r), int(c)) for r, c in highlight]
    for r, c in cells:
        if not (0 <= r < h and 0 <= c < w):
            raise ValueError(f"highlight: cell {(r, c)} is outside the {h}x{w} grid")
        corner = (c - 0.5, r - 0.5)
        ax.add_patch(Rectangle(corner, 1, 1, facecolor=highlight_color, alpha=0.25, edgecolor="none",
                               zorder=1))
        ax.add_patch(Rectangle(corner, 1, 1, facecolor="none", edgecolor=highlight_color, linewidth=2.0,
                               zorder=3))
    # Grid lines.
    for x in np.arange(-0.5, w, 1.0):
        ax.plot([x, x], [-0.5, h - 0.5], color="#555555", linewidth=0.8, zorder=2, clip_on=False)
    for y in np.arange(-0.5, h, 1.0):
        ax.plot([-0.5, w - 0.5], [y, y], color="#555555", linewidth=0.8, zorder=2, clip_on=False)
    if fontsize is None:
        fontsize = 12 if max(h, w) <= 5 else 10 if max(h, w) <= 8 else 8
    for r in range(h):
        for c in range(w):
            ax.text(c, r, format_number(arr[r, c]), ha="center", va="center", fontsize=fontsize,
                    color="black", zorder=4)
    ax.set_xlim(-0.5, w - 0.5)
    ax.set_ylim(h - 0.5, -0.5)
    ax.set_aspect("equal")
    if show_indices:
        ax.set_xticks(range(w), [str(c + index_offset[1]) for c in range(w)], fontsize=9)
        ax.set_yticks(range(h), [str(r + index_offset[0]) for r in range(h)], fontsize=9)
        ax.tick_params(length=0, pad=2, labeltop=True, labelbottom=False)
    else:
        ax.set_xticks([])
        ax.set_yticks([])
    for spine in ax.spines.values():
        spine.set_visible(False)
    if title is not None:
        ax.set_title(title, fontsize=12)
    return ax


def window_cells(step: Any) -> list[tuple[int, int]]:
    """The ``(row, col)`` cells of the padded input covered by one window.

    Parameters
    ----------
    step : conv_lib.WindowStep
        A step from :func:`conv_lib.walk_windows`; its ``rows`` and ``cols`` are either
        1-D index vectors (the window is their outer product) or index arrays of the
        window's shape.

    Returns
    -------
    list of (int, int)
        In row-major window order (dilation aware: dilated windows have gaps).
    """
    rows, cols = np.asarray(step.rows), np.asarray(step.cols)
    if rows.ndim == 1 and cols.ndim == 1:
        rows, cols = np.meshgrid(rows, cols, indexing="ij")
    rows, cols = np.broadcast_arrays(rows, cols)
    return [(int(r), int(c)) for r, c in zip(rows.ravel(), cols.ravel(), strict=True)]


def _padding_mask(padded_shape: tuple[int, int], padding: int | Sequence[int]) -> np.ndarray:
    ph, pw = _as_pair(padding, "padding")
    mask = np.ones(padded_shape, dtype=bool)
    mask[ph : padded_shape[0] - ph, pw : padded_shape[1] - pw] = False
    return mask


def _step_axes(walk: Any, figsize: tuple[float, float], dpi: float | None = None) -> tuple[Figure, Any]:
    """Four axes whose widths follow their grids' widths, so all cells have one size."""
    widths = [walk.padded_image.shape[1], walk.kernel.shape[1], walk.kernel.shape[1], walk.output_shape[1]]
    return plt.subplots(1, 4, figsize=figsize, dpi=dpi, gridspec_kw={"wspace": 0.3, "width_ratios": widths})


def _step_titles(walk: Any, titles: Sequence[str] | None) -> list[str]:
    if titles is not None:
        titles = [str(t) for t in titles]
        if len(titles) != 4:
            raise ValueError(f"titles: got {len(titles)}; expected 4 (input, kernel, products, output)")
        return titles
    ph, pw = walk.padding
    return ["input" + (" (zero-padded)" if ph or pw else ""), "kernel, flipped" if walk.flip else "kernel",
            "products", "feature map"]


def _draw_step(axes: Sequence[Axes], walk: Any, step: Any, feature_map: np.ndarray,
               titles: Sequence[str], output_symbol: str = "S") -> None:
    ax_in, ax_k, ax_p, ax_out = axes
    ph, pw = walk.padding
    padded = np.asarray(walk.padded_image)
    draw_grid(ax_in, padded, title=titles[0],
              highlight=window_cells(step), shade=_padding_mask(padded.shape, (ph, pw)) if ph or pw else None,
              index_offset=(-ph, -pw))
    draw_grid(ax_k, step.kernel, title=titles[1])
    draw_grid(ax_p, step.products, title=titles[2])
    i, j = step.index
    draw_grid(ax_out, feature_map, title=titles[3], highlight=[(i, j)], highlight_color=OUTPUT_COLOR)
    ax_p.set_xlabel(f"sum = {format_number(step.value)}", fontsize=12, color=OUTPUT_COLOR)
    label = f"{output_symbol}[{i}, {j}] = {format_number(step.value)}"
    ax_out.set_xlabel(label, fontsize=12, color=OUTPUT_COLOR)


def feature_map_so_far(walk: Any, upto: int) -> np.ndarray:
    """The feature map after steps ``0 .. upto`` of a walk; cells not yet computed are NaN.

    Parameters
    ----------
    walk : conv_lib.ConvolutionWalk
        From :func:`conv_lib.walk_windows`.
    upto : int
        Last step included (0-based; negative counts from the end).

    Returns
    -------
    numpy.ndarray, shape ``walk.output_shape``, float64
    """
    out = np.full(walk.output_shape, np.nan)
    for s in walk[: range(len(walk))[upto] + 1]:
        out[s.index] = s.value
    return out


def plot_window_step(
    walk: Any,
    step: int,
    *,
    titles: Sequence[str] | None = None,
    output_symbol: str = "S",
    figsize: tuple[float, float] = (8.5, 2.8),
) -> Figure:
    """One step of the sliding window, as four panels.

    Panels, left to right: the (padded, shaded) input with the window highlighted; the
    kernel as applied (already flipped for a convolution); the element-wise products and
    their sum; the feature map so far, with the output cell that receives the sum.

    Parameters
    ----------
    walk : conv_lib.ConvolutionWalk
        From :func:`conv_lib.walk_windows` (it knows the padded image, padding and flip).
    step : int
        Which window (0-based, row-major; negative counts from the end).
    titles : sequence of 4 str, optional
        Panel titles; by default "input", "kernel" (or "kernel, flipped"), "products",
        "feature map".
    output_symbol : str
        Name of the output in the label under the last panel (``S[i, j] = ...``).
    figsize : (float, float)

    Returns
    -------
    matplotlib.figure.Figure
    """
    fig, axes = _step_axes(walk, figsize)
    current = walk[step]
    _draw_step(axes, walk, current, feature_map_so_far(walk, current.step), _step_titles(walk, titles),
               output_symbol)
    return fig


def sliding_window_animation(
    image: Any,
    kernel: Any,
    stride: int | Sequence[int] = 1,
    padding: int | Sequence[int] | str = 0,
    dilation: int | Sequence[int] = 1,
    flip: bool = False,
    *,
    interval: int = 900,
    max_frames: int = 25,
    figsize: tuple[float, float] = (8.5, 2.8),
    dpi: float = 70,
) -> FuncAnimation:
    """Animate the sliding window; the feature map fills in one cell per frame.

    Frames come from :func:`conv_lib.walk_windows` (one frame per output cell), each drawn
    as in :func:`plot_window_step`.

    Parameters
    ----------
    image, kernel, stride, padding, dilation, flip
        As for :func:`conv_lib.walk_windows`.
    interval : int
        Milliseconds between frames.
    max_frames : int
        Refuse (``ValueError``) to build more frames than this, to keep pages light.
    figsize : (float, float)
    dpi : float
        Figure resolution; see also :func:`animation_html`.

    Returns
    -------
    matplotlib.animation.FuncAnimation
        With ``anim.walk`` (the :class:`conv_lib.ConvolutionWalk`) attached. Its figure is
        left open: :func:`animation_html` renders and closes it.
    """
    from conv_lib.stepwise import walk_windows

    walk = walk_windows(image, kernel, stride=stride, padding=padding, dilation=dilation, flip=flip)
    if len(walk) > max_frames:
        raise ValueError(
            f"image: {len(walk)} window positions would make {len(walk)} frames; expected at most "
            f"max_frames={max_frames} (use a smaller image, a larger stride or raise max_frames)"
        )
    steps = list(walk)
    titles = _step_titles(walk, None)
    fig, axes = _step_axes(walk, figsize, dpi)
    values = np.full(walk.output_shape, np.nan)

    def update(k: int) -> list[Any]:
        values[...] = np.nan
        for s in steps[: k + 1]:
            values[s.index] = s.value
        _draw_step(axes, walk, steps[k], values, titles)
        fig.suptitle(f"step {k + 1} of {len(steps)}", fontsize=10, y=0.02, va="bottom")
        return list(axes)

    update(0)
    anim = FuncAnimation(fig, update, frames=len(steps), interval=interval, blit=False, repeat=True)
    anim.walk = walk  # type: ignore[attr-defined]
    return anim


def animation_html(anim: FuncAnimation, alt: str, *, dpi: float = 70, default_mode: str = "loop") -> str:
    """Self-contained HTML (JavaScript player, frames embedded as PNG) for an animation.

    It plays in a static web page without a Jupyter kernel. The animation's figure is
    closed afterwards so the notebook does not also show it as a still image.

    Parameters
    ----------
    anim : matplotlib.animation.Animation
    alt : str
        Alternative text, set on the player's ``<img>`` element; must not be empty.
    dpi : float
        Resolution of the embedded frames (keep it low: every frame is a PNG in the page).
    default_mode : {"loop", "once", "reflect"}

    Returns
    -------
    str
        HTML to display, e.g. ``IPython.display.HTML(animation_html(anim, alt="..."))``.
    """
    if not alt or not alt.strip():
        raise ValueError("alt: got an empty string; expected a description of the animation")
    with mpl.rc_context({"savefig.dpi": dpi}):
        text = anim.to_jshtml(default_mode=default_mode)
    plt.close(anim._fig)
    text, n = re.subn(r"<img id=", f'<img alt="{_html.escape(alt, quote=True)}" id=', text, count=1)
    if n != 1:  # pragma: no cover - depends on matplotlib's template
        raise RuntimeError("animation_html: could not find the player's <img> element to add alt text")
    return text


def jshtml_frame_count(html_text: str) -> int:
    """Number of frames in HTML made by ``Animation.to_jshtml`` (0 if there is none).

    Counts the embedded ``frames[i] = "data:image/...`` assignments.
    """
    return len(set(re.findall(r'frames\[(\d+)\]\s*=\s*"data:image/', html_text)))


def plot_kernel_flip(kernel: Any, *, figsize: tuple[float, float] = (6.4, 2.9)) -> Figure:
    """A kernel next to its 180-degree rotation ``kernel[::-1, ::-1]``.

    Axes are labelled with centred offsets (``-1, 0, 1`` for a 3x3 kernel), the ``a`` and
    ``b`` of :math:`K(a, b)`, so the flip reads as :math:`K(-a, -b)`. (The letters ``m, n``
    index the image in the one-page summary's formula, so the kernel uses others.)

    Parameters
    ----------
    kernel : array_like, shape (kH, kW)
        Numbers or strings (e.g. letters, to follow each entry).

    Returns
    -------
    matplotlib.figure.Figure
    """
    k = np.asarray(kernel)
    if k.ndim != 2:
        raise ValueError(f"kernel: got an array of shape {k.shape}; expected a 2-D array")
    off = (-(k.shape[0] // 2), -(k.shape[1] // 2))
    fig, (a, b) = plt.subplots(1, 2, figsize=figsize, gridspec_kw={"wspace": 0.6})
    draw_grid(a, k, title="K(a, b)", index_offset=off)
    draw_grid(b, k[::-1, ::-1], title="flipped: K(-a, -b)", index_offset=off)
    fig.text(0.5, 0.45, "rotate\n180°", ha="center", va="center", fontsize=10)
    fig.text(0.5, 0.32, "→", ha="center", va="center", fontsize=22)
    return fig


def plot_conv_geometry(
    in_size: int | Sequence[int],
    kernel_size: int | Sequence[int],
    stride: int | Sequence[int] = 1,
    padding: int | Sequence[int] = 0,
    dilation: int | Sequence[int] = 1,
    *,
    position: tuple[int, int] = (0, 0),
    title: str | None = None,
    figsize: tuple[float, float] | None = None,
) -> Figure:
    """Input grid (padding shaded), one window's footprint, and the output grid.

    The footprint is the window that produces output cell ``position``, taken from
    :func:`conv_lib.walk_windows`; the output's size is :func:`conv_lib.output_size`. In
    the style of the diagrams of Dumoulin and Visin (2016).

    Parameters
    ----------
    in_size, kernel_size, stride, padding, dilation : int or (int, int)
        Geometry of one 2-D convolution.
    position : (int, int)
        Output cell whose window is drawn.
    title : str, optional
        Figure title; by default the parameters and the output size.
    figsize : (float, float), optional

    Returns
    -------
    matplotlib.figure.Figure
    """
    from conv_lib.arithmetic import output_size
    from conv_lib.stepwise import walk_windows

    h, w = _as_pair(in_size, "in_size")
    kh, kw = _as_pair(kernel_size, "kernel_size")
    sh, sw = _as_pair(stride, "stride")
    ph, pw = _as_pair(padding, "padding")
    dh, dw = _as_pair(dilation, "dilation")
    oh = output_size(h, kh, stride=sh, padding=ph, dilation=dh)
    ow = output_size(w, kw, stride=sw, padding=pw, dilation=dw)
    walk = walk_windows(np.zeros((h, w)), np.ones((kh, kw)), stride=(sh, sw), padding=(ph, pw),
                        dilation=(dh, dw))
    if walk.output_shape != (oh, ow):  # pragma: no cover - the two must agree
        raise RuntimeError(f"walk_windows gives {walk.output_shape}, output_size gives {(oh, ow)}")
    pi, pj = (int(v) for v in position)
    if not (0 <= pi < oh and 0 <= pj < ow):
        raise ValueError(f"position: got {position}; expected an output cell of the {oh}x{ow} output")
    step = walk[pi * ow + pj]
    padded_shape = (h + 2 * ph, w + 2 * pw)
    blank = np.full(padded_shape, "", dtype=object)
    blank[_padding_mask(padded_shape, (ph, pw))] = "0"
    out = np.full((oh, ow), "", dtype=object)
    if figsize is None:
        figsize = (2.0 + 0.42 * (padded_shape[1] + ow), 0.8 + 0.42 * max(padded_shape[0], oh))
    fig, (a, b) = plt.subplots(
        1, 2, figsize=figsize, gridspec_kw={"width_ratios": [padded_shape[1], max(ow, 1)], "wspace": 0.3}
    )
    draw_grid(a, blank, highlight=window_cells(step), shade=_padding_mask(padded_shape, (ph, pw)),
              index_offset=(-ph, -pw), fontsize=8,
              title=f"input {h}×{w}" + (f", padding {ph}" if ph == pw and ph else
                                        f", padding ({ph}, {pw})" if ph or pw else ""))
    draw_grid(b, out, highlight=[tuple(position)], highlight_color=OUTPUT_COLOR, title=f"output {oh}×{ow}")
    if title is None:
        title = f"k={kh}, s={sh}, p={ph}, d={dh}" if (kh, sh, ph, dh) == (kw, sw, pw, dw) else (
            f"k=({kh},{kw}), s=({sh},{sw}), p=({ph},{pw}), d=({dh},{dw})")
    fig.suptitle(title, fontsize=11, y=1.0, va="bottom")
    return fig
