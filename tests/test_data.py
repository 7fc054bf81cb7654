"""Data loading: the IDX reader on small files written here, the search order, and the real Debian files."""

import gzip
import struct
from pathlib import Path

import helpers

import keras
import numpy as np
import pytest

DEBIAN = helpers.DEBIAN_DIRS["fashion_mnist"]


def idx_bytes(array):
    """Encode a uint8 array as IDX bytes."""
    return bytes([0, 0, 0x08, array.ndim]) + struct.pack(f">{array.ndim}I", *array.shape) + array.tobytes()


def write_idx_dir(directory, n_train=5, n_test=3):
    """Write the four gzipped IDX files of a tiny fake dataset; return its arrays."""
    rng = np.random.default_rng(0)
    arrays = (
        rng.integers(0, 256, (n_train, 28, 28), dtype=np.uint8),
        rng.integers(0, 10, n_train, dtype=np.uint8),
        rng.integers(0, 256, (n_test, 28, 28), dtype=np.uint8),
        rng.integers(0, 10, n_test, dtype=np.uint8),
    )
    for name, array in zip(helpers.IDX_FILES, arrays):
        with gzip.open(Path(directory) / name, "wb") as f:
            f.write(idx_bytes(array))
    return arrays


def test_read_idx_round_trips_gzipped_and_raw(tmp_path):
    images = np.arange(2 * 3 * 4, dtype=np.uint8).reshape(2, 3, 4)
    raw = tmp_path / "images.idx"
    raw.write_bytes(idx_bytes(images))
    zipped = tmp_path / "images.idx.gz"
    zipped.write_bytes(gzip.compress(idx_bytes(images)))
    np.testing.assert_array_equal(helpers.read_idx(raw), images)
    np.testing.assert_array_equal(helpers.read_idx(zipped), images)


@pytest.mark.parametrize(
    "content, problem",
    [
        (lambda good: good[:-7], "truncated or corrupt"),  # data cut short
        (lambda good: good + b"\x00", "truncated or corrupt"),  # trailing bytes
        (lambda good: b"\x01\x02" + good[2:], "bad header"),
        (lambda good: good[:6], "truncated header"),
        (lambda good: b"", "bad header"),
    ],
)
def test_read_idx_names_a_broken_file(tmp_path, content, problem):
    good = idx_bytes(np.zeros((4, 28, 28), np.uint8))
    path = tmp_path / "broken.idx"
    path.write_bytes(content(good))
    with pytest.raises(helpers.DataError, match=problem) as err:
        helpers.read_idx(path)
    assert str(path) in str(err.value)


def test_read_idx_names_a_truncated_or_corrupt_gzip(tmp_path):
    zipped = gzip.compress(idx_bytes(np.zeros((50, 28, 28), np.uint8)))
    truncated = tmp_path / "truncated.gz"
    truncated.write_bytes(zipped[: len(zipped) // 2])
    not_gzip = tmp_path / "garbage.gz"
    not_gzip.write_bytes(b"this is not gzip data at all")
    for path in (truncated, not_gzip):
        with pytest.raises(helpers.DataError, match="cannot read it") as err:
            helpers.read_idx(path)
        assert str(path) in str(err.value)


def test_load_dataset_prefers_an_explicit_directory(tmp_path):
    x_train, y_train, x_test, y_test = write_idx_dir(tmp_path)
    (a, b), (c, d) = helpers.load_dataset("fashion_mnist", data_dir=tmp_path)
    for got, want in zip((a, b, c, d), (x_train, y_train, x_test, y_test)):
        np.testing.assert_array_equal(got, want)


def test_load_dataset_reads_the_environment_variable(tmp_path, monkeypatch):
    x_train, *_ = write_idx_dir(tmp_path, n_train=7)
    monkeypatch.setenv(helpers.DATA_DIR_ENV, str(tmp_path))
    (a, _), _ = helpers.load_dataset("mnist")
    np.testing.assert_array_equal(a, x_train)


def test_explicit_directory_without_the_files_is_an_error(tmp_path):
    with pytest.raises(helpers.DataError, match="does not hold the four files"):
        helpers.load_dataset("fashion_mnist", data_dir=tmp_path)


def test_unknown_dataset_name_lists_the_choices():
    with pytest.raises(ValueError, match=r"Unknown dataset 'cifar'.*fashion_mnist.*mnist"):
        helpers.load_dataset("cifar")


def test_failed_download_says_what_was_tried_and_how_to_fix(tmp_path, monkeypatch):
    monkeypatch.delenv(helpers.DATA_DIR_ENV, raising=False)
    monkeypatch.setenv("KERAS_HOME", str(tmp_path / "keras"))
    monkeypatch.setattr(helpers, "DEBIAN_DIRS", {})

    def offline():
        raise OSError("network is unreachable")

    monkeypatch.setattr(keras.datasets.mnist, "load_data", offline)
    with pytest.raises(helpers.DataError) as err:
        helpers.load_dataset("mnist")
    message = str(err.value)
    for part in ("tried", helpers.DATA_DIR_ENV, "Keras cache", "network is unreachable", "connect to the internet"):
        assert part in message
    assert list(tmp_path.rglob("*")) == []  # nothing half-written left behind


def test_keras_cache_is_used_before_downloading(tmp_path, monkeypatch):
    monkeypatch.delenv(helpers.DATA_DIR_ENV, raising=False)
    monkeypatch.setenv("KERAS_HOME", str(tmp_path))
    monkeypatch.setattr(helpers, "DEBIAN_DIRS", {})
    cache = tmp_path / "datasets" / "fashion-mnist"
    cache.mkdir(parents=True)
    x_train, *_ = write_idx_dir(cache)
    monkeypatch.setattr(keras.datasets.fashion_mnist, "load_data", lambda: pytest.fail("should not download"))
    (a, _), _ = helpers.load_dataset("fashion_mnist")
    np.testing.assert_array_equal(a, x_train)


@pytest.mark.skipif(not helpers.has_idx_files(DEBIAN), reason="Debian's dataset-fashion-mnist is not installed")
def test_real_fashion_mnist_from_the_debian_package(monkeypatch):
    monkeypatch.delenv(helpers.DATA_DIR_ENV, raising=False)
    (x_train, y_train), (x_test, y_test) = helpers.load_dataset("fashion_mnist")
    assert x_train.shape == (60000, 28, 28) and x_test.shape == (10000, 28, 28)
    assert x_train.dtype == np.uint8 and y_train.shape == (60000,) and y_test.shape == (10000,)
    assert sorted(np.unique(y_train)) == list(range(10))
    assert np.bincount(y_test).tolist() == [1000] * 10


def test_prepare_images_flattens_and_scales():
    images = np.array([[[0, 255], [51, 102]]], dtype=np.uint8)
    x = helpers.prepare_images(images)
    assert x.shape == (1, 4) and x.dtype == np.float32
    np.testing.assert_allclose(x, [[0.0, 1.0, 0.2, 0.4]])
