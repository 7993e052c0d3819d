"""Outputs are atomic while they are being written: an encoder is stopped half-way (in a thread, on a
threading.Event) and the final name must not exist yet, nor any file but one hidden temporary; once
released, the final name holds the complete file and the temporary is gone. (The crash tests kill a
process mid-write; this checks the same guarantee in-process, for every writer and the batch.)"""

from __future__ import annotations

import threading
from pathlib import Path

import numpy as np
import pytest

import csrnet
from csrnet.io import codecs
from csrnet.io.formats import read_photo, write_photo
from csrnet.io.photo import Photo

#: the writer each output format goes through (module attributes the format table looks up per call)
WRITERS = {"tif": "write_tiff", "png": "write_png_array", "webp": "write_pillow", "jpg": "write_pillow"}


class HalfWayWriter:
    """Wraps a codec writer: encodes to a side file, copies the first half of the bytes into the real
    (temporary) target, flushes, then waits for :attr:`release` before writing the rest."""

    def __init__(self, real, side: Path) -> None:
        self.real, self.side = real, side
        self.half_written, self.release = threading.Event(), threading.Event()
        self.target: Path | None = None
        self.data = b""

    def __call__(self, photo, tmp, *args, **kwargs):
        self.real(photo, self.side, *args, **kwargs)
        self.data = self.side.read_bytes()
        self.target = Path(tmp)
        with open(tmp, "wb") as f:
            f.write(self.data[: len(self.data) // 2])
            f.flush()
            self.half_written.set()
            assert self.release.wait(20), "never released"
            f.write(self.data[len(self.data) // 2 :])


def _photo() -> Photo:
    rng = np.random.default_rng(0)
    return Photo(rng.integers(0, 256, (48, 64, 3), dtype=np.uint8))


def _run_stopped_half_way(monkeypatch, tmp_path: Path, fmt: str, write) -> tuple[HalfWayWriter, Path]:
    """Start ``write()`` in a thread with the format's writer stopped half-way; check the folder while it waits."""
    side = tmp_path / "side"
    side.mkdir()
    writer = HalfWayWriter(getattr(codecs, WRITERS[fmt]), side / f"full.{fmt}")
    monkeypatch.setattr(codecs, WRITERS[fmt], writer)
    if fmt == "jpg":  # JPEGs go through libjpeg-turbo when it is there; make them take Pillow's writer
        monkeypatch.setattr(codecs, "jpeg_from_array", lambda photo, quality: None)
    out_dir = tmp_path / "out"
    final = out_dir / f"photo.{fmt}"
    errors: list[BaseException] = []

    def run() -> None:
        try:
            write(final)
        except BaseException as e:  # noqa: BLE001 - reported by the main thread
            errors.append(e)

    t = threading.Thread(target=run)
    t.start()
    try:
        assert writer.half_written.wait(20), errors
        # while the encoder is half-way: nothing under the final name, only one hidden temporary
        assert not final.exists()
        entries = [p for p in out_dir.iterdir()]
        assert entries == [writer.target] and writer.target.name.startswith(".") and writer.target.name.endswith(".tmp")
        assert writer.target.stat().st_size == len(writer.data) // 2
    finally:
        writer.release.set()
        t.join(20)
    assert not errors, errors
    return writer, final


@pytest.mark.parametrize("fmt", sorted(WRITERS))
def test_final_name_is_absent_while_write_photo_is_half_way(monkeypatch, tmp_path, fmt):
    (tmp_path / "out").mkdir()
    photo = _photo()
    writer, final = _run_stopped_half_way(monkeypatch, tmp_path, fmt, lambda path: write_photo(photo, path))
    assert final.read_bytes() == writer.data  # complete, and the temporary is gone
    assert list(final.parent.iterdir()) == [final]
    back = read_photo(final, as_array=True)
    assert np.asarray(back.pixels).shape == (48, 64, 3)


def test_final_name_is_absent_while_the_batch_writes(monkeypatch, tmp_path):
    """The batch's read -> retouch -> write (what `csrnet enhance` and the web app run) keeps it too."""
    from csrnet.batch import enhancer, retouch_file

    (tmp_path / "out").mkdir()
    src = tmp_path / "in.tif"
    write_photo(_photo(), src)
    retouch = enhancer(csrnet.load_model("auto"))
    writer, final = _run_stopped_half_way(monkeypatch, tmp_path, "tif",
                                          lambda path: retouch_file(src, path, retouch, fmt="tif"))
    assert final.read_bytes() == writer.data
    assert list(final.parent.iterdir()) == [final]
