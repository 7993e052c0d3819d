"""Errors are types: callers branch on the class, never on the message."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

import csrnet
from csrnet import errors
from csrnet.batch import Job, Retouch, process
from csrnet.io.formats import read_photo, write_photo
from csrnet.io.photo import Photo


def test_hierarchy():
    for cls in (errors.PhotoError, errors.TooLargeError, errors.UnsupportedFormatError, errors.OutputExistsError,
                errors.ModelError, errors.InvalidArgumentError, errors.MissingDependencyError):
        assert issubclass(cls, errors.CsrnetError)
    assert issubclass(errors.TooLargeError, errors.PhotoError)
    assert issubclass(errors.InvalidArgumentError, ValueError)
    assert issubclass(errors.MissingDependencyError, ImportError)
    assert issubclass(errors.OutputExistsError, FileExistsError)


def test_each_problem_raises_its_type(tmp_path):
    Image.new("RGB", (100, 80)).save(tmp_path / "a.png")
    with pytest.raises(errors.TooLargeError, match="over the limit of 1,000"):
        read_photo(tmp_path / "a.png", max_pixels=1000)
    with pytest.raises(errors.PhotoError, match="no such file"):
        read_photo(tmp_path / "missing.jpg")
    (tmp_path / "junk.jpg").write_bytes(b"not an image at all")
    with pytest.raises(errors.PhotoError, match="not an image"):
        read_photo(tmp_path / "junk.jpg")
    with pytest.raises(errors.OutputExistsError, match="exists"):
        write_photo(Photo(Image.new("RGB", (4, 4))), tmp_path / "a.png")
    with pytest.raises(errors.ModelError, match="no such model"):
        csrnet.load_model("no-such-model")
    with pytest.raises(errors.InvalidArgumentError, match="H x W x 3"):
        csrnet.enhance(np.zeros((4, 4), np.uint8), "auto")
    with pytest.raises(errors.InvalidArgumentError, match="condition_size"):
        csrnet.enhance(np.zeros((4, 4, 3), np.uint8), "auto", condition_size="big")


def test_batch_counts_a_race_as_skipped(tmp_path):
    """Another process writing the same output first is 'skipped' (by type, not by message text)."""
    Image.new("RGB", (64, 48), (90, 60, 30)).save(tmp_path / "in.png")
    job = Job(tmp_path / "in.png", tmp_path / "out.png")

    def retouch_while_another_finishes(pixels):
        Image.new("RGB", (4, 4)).save(job.dst)  # the other process wins the race
        return pixels

    result = process(job, Retouch(retouch_while_another_finishes, {"test": 1}))
    assert result.status == "skipped" and "exists" in result.message
    assert Image.open(job.dst).size == (4, 4)  # never replaced
