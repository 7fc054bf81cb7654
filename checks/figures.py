"""Judging a figure: which arrays its rows of images come from, and in which order."""

from typing import NamedTuple

from helpers import INPUT_DIM  # the lab's numbers, defined in helpers

import numpy as np

from checks.snapshots import FigureInfo, type_name
from checks.variables import scale_words
from checks.verdicts import Failed

MAX_IMAGES = 200  # in one figure: the lab's show 20 or 30; each image is looked up in every candidate array


MAX_NEAR_ROWS = 256  # rows whose pixel sum is near an image's, compared pixel by pixel (honest arrays: a dozen)


def figure_rows(fig, name):
    """The flattened images a figure (FigureInfo) shows, grouped into its rows of axes, top row first."""
    if not isinstance(fig, FigureInfo):
        raise Failed(f"{name} should be a matplotlib Figure, got {type_name(fig)}: helpers.plot_rows returns one")
    if not fig.rows:
        raise Failed(f"{name} shows no images: draw them with helpers.plot_rows (imshow in each axes)")
    count = sum(len(row) for row in fig.rows)
    if count > MAX_IMAGES:
        raise Failed(
            f"{name} shows {count} images: the card's figures show a few rows of ten, which a reader can compare"
        )
    return [list(row) for row in fig.rows]


def candidate_arrays(ns, names):
    """{name: (rows, row sums)} for each variable that is an array of flattened images."""
    found = {}
    for name in names:
        x = ns.get(name)
        if isinstance(x, np.ndarray) and x.ndim == 2 and x.shape[1] == INPUT_DIM and x.dtype.kind in "biuf":
            found[name] = (x, np.sum(x, axis=1, dtype="float64"))
    return found


def identify(image, candidates):
    """{array name: set of its rows} for every array that holds the image (two when arrays are equal), or {}."""
    if image.size != INPUT_DIM or not np.isfinite(image).all():
        return {}
    total = float(np.sum(image))
    found = {}
    for name, (rows, sums) in candidates.items():
        near = np.flatnonzero(np.abs(sums - total) < INPUT_DIM * 1e-4)[:MAX_NEAR_ROWS]
        if near.size:
            exact = np.max(np.abs(rows[near].astype("float64") - image), axis=1) < 1e-4
            if exact.any():
                found[name] = set(near[exact].tolist())
    return found


class RowSource(NamedTuple):
    """One row of a figure: the arrays that hold all its images, for each image the rows it may be, and, for a row
    that no array holds as it is, the words naming an array it shows at another scale (or "")."""

    arrays: tuple
    indices: list
    scaled: str = ""


SCALES = (1 / 255, 255, 256 / 255, 255 / 256)  # a figure's image = array row x scale: 0-255 pixels, /256, /255 twice


def row_sources(fig, name, ns, names):
    """For each row of the figure, a RowSource: which arrays hold all its images (two when arrays are equal, as a noisy
    set made in place is its clean set), or which one it shows at another scale."""
    candidates = candidate_arrays(ns, names)
    sources = []
    for row in figure_rows(fig, name):
        found = [identify(image, candidates) for image in row]
        arrays = [array for array in candidates if all(array in each for each in found)]
        indices = [set().union(*each.values()) if each else set() for each in found]
        sources.append(RowSource(tuple(arrays), indices, "" if arrays else scaled_source(row, candidates)))
    return sources


def scaled_source(row, candidates):
    """'x_test times 255 (...)' when every image of the row is one array's image times one of SCALES, else ""."""
    for scale in SCALES:
        found = [identify(image / scale, candidates) for image in row]
        arrays = [array for array in candidates if all(array in each for each in found)]
        if arrays:
            return f"{arrays[0]} {scale_words(scale)}"
    return ""


ROW_WORDS = ("top", "second", "third", "fourth", "fifth")  # a figure's rows, top first (the lab's have 3 at most)
MEANINGS = {  # what each array a figure may show is, in a student's words
    "x_train": "the training images",
    "x_test": "the clean test images",
    "x_test_noisy": "the noisy test images",
    "x_train_noisy": "the noisy training images",
    "reconstructions": "the regular autoencoder's outputs",
    "x_test_denoised": "the DAE's outputs",
}


def meaning(name):
    """' (what the array is)' for hints, or '' for an array without words."""
    return f" ({MEANINGS[name]})" if name in MEANINGS else ""


def shown(sources):
    """Each row's array as words for hints: its name, the array at another scale, or 'images from no single array'."""
    return [row.arrays[0] if row.arrays else row.scaled or "images from no single array" for row in sources]


def rows_in_order(sources, expected):
    """Whether the figure's rows show the expected arrays, one row each, top to bottom."""
    return len(sources) == len(expected) and all(name in row.arrays for row, name in zip(sources, expected))


def check_rows(sources, fig_name, expected, why):
    """Raise Failed unless the figure's rows show the expected arrays in order, the same images in every row."""
    owner = fig_name + ("'" if fig_name.endswith("s") else "'s")  # fig_results' rows, fig_autoencoder's rows
    if not rows_in_order(sources, expected):
        rows = shown(sources)
        scaled = [row.scaled for row in sources if row.scaled]
        if scaled and len(sources) == len(expected):
            raise Failed(
                f"{owner} rows show {', '.join(rows)}: a scale mistake; a figure drawn for pixels in [0, 1] shows "
                f"the arrays themselves, {why}"
            )
        if sorted(rows) == sorted(expected):
            raise Failed(
                f"{owner} rows are in another order ({', '.join(rows)} from the top): the card gives the rows' "
                f"order, {why}"
            )
        swapped = [(n, row, want) for n, (row, want) in enumerate(zip(sources, expected)) if want not in row.arrays]
        if len(sources) == len(expected) and all(row.arrays for _, row, _ in swapped):  # each shows another array
            told = "; ".join(
                f"its {ROW_WORDS[n]} row shows {row.arrays[0]}{meaning(row.arrays[0])} where the card asks for "
                f"{want}{meaning(want)}"
                for n, row, want in swapped
            )
            raise Failed(f"{owner} rows: {told}, {why}")
        raise Failed(
            f"{owner} rows show {', '.join(rows)}: the card asks for {len(expected)} rows, one kind of image each, "
            f"{why}"
        )
    if not same_images(sources):
        raise Failed(
            f"{owner} rows show different images: each column follows one test image through every row, so "
            "show the same images, in the same order, in every row"
        )


def same_images(sources):
    """Whether every row shows the same images: at each position, some row index all rows' images may be."""
    lengths = {len(row.indices) for row in sources}
    if len(lengths) != 1:
        return False
    return all(set.intersection(*column) for column in zip(*(row.indices for row in sources)))
