"""Writing and reading .cube files: the text csrnet writes, and what it accepts from other tools.

Small hand-written files, each for one rule of the format (Adobe "Cube LUT Specification 1.0",
Resolve's and IRIDAS's variants); the round trip through colour-science and ffmpeg is in test_cube.py.
"""

from __future__ import annotations

import numpy as np
import pytest

from csrnet.errors import CsrnetError, OutputExistsError
from csrnet.io.cube import format_cube, read_cube, write_cube
from csrnet.kernels.lattice import identity_lattice

IDENTITY2 = "\n".join(f"{r} {g} {b}" for b in (0, 1) for g in (0, 1) for r in (0, 1))  # red fastest


def _cube(tmp_path, text: str, name: str = "t.cube"):
    path = tmp_path / name
    path.write_text(text)
    return path


def _lines(text: str) -> list[str]:
    return text.splitlines()


# ---------------------------------------------------------------- writing
def test_format_cube_header_and_six_decimal_rows():
    text = format_cube(identity_lattice(2), 2)
    lines = _lines(text)
    assert lines[:4] == ['TITLE "csrnet"', "LUT_3D_SIZE 2", "DOMAIN_MIN 0.0 0.0 0.0", "DOMAIN_MAX 1.0 1.0 1.0"]
    assert lines[4:6] == ["0.000000 0.000000 0.000000", "1.000000 0.000000 0.000000"]  # red fastest
    assert len(lines) == 4 + 8


def test_format_cube_clips_to_the_unit_range_unless_told_not_to():
    table = np.full((8, 3), 1.25, np.float32)
    table[0] = -0.5
    assert _lines(format_cube(table, 2))[4:6] == ["0.000000 0.000000 0.000000", "1.000000 1.000000 1.000000"]
    assert _lines(format_cube(table, 2, clip=False))[4:6] == ["-0.500000 -0.500000 -0.500000", "1.250000 1.250000 1.250000"]


def test_format_cube_keeps_the_title_on_one_quoted_line():
    text = format_cube(identity_lattice(2), 2, title='my "look"\nv2')
    assert _lines(text)[0] == "TITLE \"my 'look' v2\""


@pytest.mark.parametrize("size", [1, 257])
def test_format_cube_refuses_sizes_outside_2_to_256(size):
    table = np.broadcast_to(np.zeros(3), (size**3, 3))  # no memory for 257**3 rows
    with pytest.raises(CsrnetError, match="between 2 and 256"):
        format_cube(table, size)


def test_format_cube_refuses_a_table_of_another_size():
    with pytest.raises(CsrnetError, match="does not match"):
        format_cube(np.zeros((9, 3)), 2)


def test_write_cube_defaults_title_and_clipping(tmp_path):
    table = np.full((8, 3), 2.0, np.float32)
    path = write_cube(tmp_path / "a.cube", table, 2)
    text = path.read_text()
    assert text.startswith('TITLE "csrnet"\n') and "2.000000" not in text and "1.000000 1.000000 1.000000" in text
    path = write_cube(tmp_path / "b.cube", table, 2, clip=False)
    assert "2.000000 2.000000 2.000000" in path.read_text()


def test_write_cube_is_ascii_with_non_ascii_titles_replaced(tmp_path):
    path = write_cube(tmp_path / "a.cube", identity_lattice(2), 2, title="café")
    assert path.read_bytes().startswith(b'TITLE "caf?"\n')


def test_write_cube_replaces_only_when_asked(tmp_path):
    path = tmp_path / "a.cube"
    path.write_text("old")
    with pytest.raises(OutputExistsError):
        write_cube(path, identity_lattice(2), 2)
    assert path.read_text() == "old"
    write_cube(path, identity_lattice(2), 2, overwrite=True)
    assert read_cube(path).size == 2


def test_write_cube_needs_an_existing_folder(tmp_path):
    with pytest.raises(CsrnetError, match="does not exist"):
        write_cube(tmp_path / "no" / "a.cube", identity_lattice(2), 2)


def test_written_cube_reads_back(tmp_path):
    table = identity_lattice(3) * np.float32(0.5)
    cube = read_cube(write_cube(tmp_path / "a.cube", table, 3, title="half"))
    assert cube.title == "half" and cube.size == 3
    assert cube.table.dtype == np.float32 and cube.table.shape == (27, 3)
    np.testing.assert_allclose(cube.table, table, atol=1e-6)


# ---------------------------------------------------------------- reading
def test_minimal_cube_defaults_to_an_untitled_unit_domain(tmp_path):
    cube = read_cube(_cube(tmp_path, f"LUT_3D_SIZE 2\n{IDENTITY2}\n"))
    assert cube.title == "" and cube.size == 2
    assert cube.domain_min == (0.0, 0.0, 0.0) and cube.domain_max == (1.0, 1.0, 1.0)
    assert cube.table.dtype == np.float32
    np.testing.assert_array_equal(cube.table, identity_lattice(2))


def test_title_quotes_are_stripped_not_its_letters(tmp_path):
    cube = read_cube(_cube(tmp_path, f'TITLE "XmasX"\nLUT_3D_SIZE 2\n{IDENTITY2}\n'))
    assert cube.title == "XmasX"


def test_comments_and_keywords_in_any_case(tmp_path):
    body = IDENTITY2.replace("0 0 0", "0 0 0 # black # really", 1)
    cube = read_cube(_cube(tmp_path, f"# made by hand\nlut_3d_size 2  # two\n\n{body}\n"))
    np.testing.assert_array_equal(cube.table, identity_lattice(2))


def test_undecodable_bytes_in_comments_and_title_are_tolerated(tmp_path):
    path = tmp_path / "latin1.cube"
    path.write_bytes(b'TITLE "caf\xe9"\n# \xff\xfe\nLUT_3D_SIZE 2\n' + IDENTITY2.encode() + b"\n")
    cube = read_cube(path)
    assert cube.title.startswith("caf") and cube.size == 2


def test_domain_lines_set_the_input_range(tmp_path):
    cube = read_cube(_cube(tmp_path, f"LUT_3D_SIZE 2\nDOMAIN_MIN 0.5 0 -1\nDOMAIN_MAX 2 1 1e1\n{IDENTITY2}\n"))
    assert cube.domain_min == (0.5, 0.0, -1.0) and cube.domain_max == (2.0, 1.0, 10.0)


def test_resolve_input_range_sets_all_three_channels(tmp_path):
    cube = read_cube(_cube(tmp_path, f"LUT_1D_INPUT_RANGE 0 1\nLUT_3D_INPUT_RANGE 0.25 4\nLUT_3D_SIZE 2\n{IDENTITY2}\n"))
    assert cube.domain_min == (0.25, 0.25, 0.25) and cube.domain_max == (4.0, 4.0, 4.0)


def test_values_after_the_first_three_on_a_header_line_are_ignored(tmp_path):
    text = f"LUT_3D_SIZE 2\nDOMAIN_MIN 0 0 0 9\nDOMAIN_MAX 1 1 1 9\n{IDENTITY2}\n"
    cube = read_cube(_cube(tmp_path, text))
    assert cube.domain_min == (0.0, 0.0, 0.0) and cube.domain_max == (1.0, 1.0, 1.0)
    cube = read_cube(_cube(tmp_path, f"LUT_3D_INPUT_RANGE 0 2 9\nLUT_3D_SIZE 2\n{IDENTITY2}\n", "r.cube"))
    assert cube.domain_max == (2.0, 2.0, 2.0)


@pytest.mark.parametrize("domain", ["DOMAIN_MIN 1 1 1\nDOMAIN_MAX 0 0 0", "DOMAIN_MIN 1 1 1\nDOMAIN_MAX 1 1 1",
                                    "DOMAIN_MIN 0 0 1\nDOMAIN_MAX 1 1 0.5", "DOMAIN_MIN 0 0"])
def test_empty_inverted_or_short_domains_are_refused(tmp_path, domain):
    with pytest.raises(CsrnetError, match="bad domain"):
        read_cube(_cube(tmp_path, f"LUT_3D_SIZE 2\n{domain}\n{IDENTITY2}\n"))


def test_unknown_keyword_names_the_line(tmp_path):
    with pytest.raises(CsrnetError, match=r"t\.cube:2: not a \.cube line: 'FOO 1'"):
        read_cube(_cube(tmp_path, f"LUT_3D_SIZE 2\nFOO 1\n{IDENTITY2}\n"))


def test_one_dimensional_luts_are_refused_as_such(tmp_path):
    with pytest.raises(CsrnetError, match="1D-only"):
        read_cube(_cube(tmp_path, "LUT_1D_SIZE 2\n0 0 0\n1 1 1\n"))
    with pytest.raises(CsrnetError, match="1D"):
        read_cube(_cube(tmp_path, f"LUT_1D_SIZE 2\n0 0 0\n1 1 1\nLUT_3D_SIZE 2\n{IDENTITY2}\n", "both.cube"))


def test_size_range_is_2_to_256(tmp_path):
    with pytest.raises(CsrnetError, match="out of range"):
        read_cube(_cube(tmp_path, "LUT_3D_SIZE 257\n0 0 0\n"))
    with pytest.raises(CsrnetError, match="out of range"):
        read_cube(_cube(tmp_path, "LUT_3D_SIZE 1\n0 0 0\n", "one.cube"))
    with pytest.raises(CsrnetError, match="1 table rows, expected 16777216"):  # 256 is a valid size: only the rows are missing
        read_cube(_cube(tmp_path, "LUT_3D_SIZE 256\n0 0 0\n", "big.cube"))


def test_unreadable_file_is_a_csrnet_error(tmp_path):
    with pytest.raises(CsrnetError, match="cannot read"):
        read_cube(tmp_path / "missing.cube")
