"""The vectorized OBJ record reader against a line-by-line reading of the OBJ rules, on random files
(every corner layout, polygons, negative indices, materials, comments, blanks, CRLF), and its errors."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from taichi_softras import DATA_DIR
from taichi_softras.obj_reader import ObjSyntaxError, parse_obj, read_mtl


def naive_parse(text: str):
    """The OBJ rules, one line at a time: (vertices, faces, face vt (-1: none), face material name)."""
    vertices, texcoords, faces, face_vt, face_mat = [], [], [], [], []
    material = None
    for line in text.splitlines():
        line = line.split("#")[0]
        words = line.split()
        if not words:
            continue
        if words[0] == "v":
            vertices.append([float(x) for x in words[1:4]])
        elif words[0] == "vt":
            texcoords.append([float(x) for x in words[1:3]])
        elif words[0] == "usemtl":
            material = line.split(None, 1)[1].strip()
        elif words[0] == "f":
            vs, vts = [], []
            for corner in words[1:]:
                parts = corner.split("/")
                v = int(parts[0])
                vs.append(v - 1 if v > 0 else len(vertices) + v)
                if len(parts) > 1 and parts[1]:
                    t = int(parts[1])
                    vts.append(t - 1 if t > 0 else len(texcoords) + t)
                else:
                    vts.append(None)
            for i in range(1, len(vs) - 1):
                faces.append([vs[0], vs[i], vs[i + 1]])
                tri = [vts[0], vts[i], vts[i + 1]]
                face_vt.append([-1] * 3 if None in vts else tri)
                face_mat.append(material)
    return np.array(vertices), np.array(faces).reshape(-1, 3), np.array(face_vt).reshape(-1, 3), face_mat


LAYOUTS = ("{v}", "{v}/{t}", "{v}//{n}", "{v}/{t}/{n}")


@st.composite
def obj_files(draw):
    """Random OBJ text: vertices and texcoords interleaved with faces of random layouts (one per
    face line, mixed across lines, sometimes mixed within a line), positive or negative indices."""
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    out, nv, nt = [], 0, 0
    crlf = draw(st.booleans())
    for _ in range(draw(st.integers(1, 12))):
        for _ in range(int(rng.integers(0, 4)) if nv >= 3 else 3):
            out.append(f"v {rng.normal():.6f} {rng.normal():.6f} {rng.normal():.6g}" + (" 1.0" if rng.random() < 0.2 else ""))
            nv += 1
        for _ in range(int(rng.integers(0, 3))):
            out.append(f"vt {rng.random():.5f} {rng.random():.5f}")
            nt += 1
        if rng.random() < 0.3:
            out.append(f"usemtl mat_{rng.integers(3)}")
        if rng.random() < 0.2:
            out.append(rng.choice(["# a comment", "", "   ", "g part", "s off", "vn 0 0 1", "o thing", "l 1 2"]))
        for _ in range(int(rng.integers(0, 3))):
            corners = int(rng.integers(3, 7))
            layout = LAYOUTS[int(rng.integers(4)) if nt else 2 * int(rng.integers(2))]  # vt only once defined
            mixed = rng.random() < 0.1
            tokens = []
            for _ in range(corners):
                lay = LAYOUTS[rng.integers(4)] if mixed and nt else layout
                v = int(rng.integers(nv))
                t = int(rng.integers(max(nt, 1)))
                vi = v + 1 if rng.random() < 0.5 else v - nv
                ti = t + 1 if rng.random() < 0.5 else t - nt
                tokens.append(lay.format(v=vi, t=ti, n=1))
            sep = "\t" if rng.random() < 0.1 else " "
            line = "f" + sep + sep.join(tokens)
            if rng.random() < 0.1:
                line = "  " + line + "  # trailing comment"
            out.append(line)
    out.append(f"f {' '.join(str(i) for i in range(1, 4))}")
    text = ("\r\n" if crlf else "\n").join(out)
    return text if draw(st.booleans()) else text + "\n"


@settings(max_examples=60, deadline=None, derandomize=True)
@given(obj_files())
def test_random_files_match_the_line_by_line_rules(text):
    rec = parse_obj(text.encode(), "random.obj")
    vertices, faces, face_vt, face_mat = naive_parse(text)
    assert np.array_equal(rec.vertices, vertices)
    assert np.array_equal(rec.faces, faces)
    assert np.array_equal(rec.face_texcoords, face_vt)
    names = [rec.material_names[m] if m >= 0 else None for m in rec.face_material]
    assert names == face_mat


def test_spot_matches_the_line_by_line_rules():
    text = (DATA_DIR / "spot" / "spot_triangulated.obj").read_text()
    rec = parse_obj(text.encode(), "spot")
    vertices, faces, face_vt, _ = naive_parse(text)
    assert np.array_equal(rec.vertices, vertices) and np.array_equal(rec.faces, faces)
    assert np.array_equal(rec.face_texcoords, face_vt) and rec.mtllibs == ["spot_triangulated.mtl"]
    assert rec.material_names == ["material_1"] and (rec.face_material == 0).all()


def test_negative_indices_count_the_records_read_so_far():
    """The issue's case: `f -3 -2 -1` after 3 of 6 vertices means the first three."""
    text = "v 0 0 0\nv 1 0 0\nv 0 1 0\nf -3 -2 -1\nv 0 0 1\nv 1 0 1\nv 0 1 1\nf -3 -2 -1\nf 1 -1 -4\n"
    assert parse_obj(text.encode(), "x").faces.tolist() == [[0, 1, 2], [3, 4, 5], [0, 5, 2]]


def test_vertex_colours_and_extra_coordinates():
    rec = parse_obj(b"v 0 0 0 0.1 0.2 0.3\nv 1 0 0 1 1 1\nv 0 1 0 0 0 0.5\nf 1 2 3\n", "c")
    assert np.allclose(rec.vertex_colors, [[0.1, 0.2, 0.3], [1, 1, 1], [0, 0, 0.5]])
    rec = parse_obj(b"v 0 0 0 1\nv 1 0 0 0.1 0.2 0.3\nv 0 1 0\nf 1 2 3\n", "w")
    assert rec.vertex_colors is None and rec.vertices.tolist() == [[0, 0, 0], [1, 0, 0], [0, 1, 0]]


def test_bom_tabs_and_crlf():
    rec = parse_obj(b"\xef\xbb\xbfv\t0 0 0\r\nv 1 0 0\r\n\tv 0 1 0\r\nusemtl  red \r\nf\t1/1 2/1 3/1\r\nvt 0.5 0.5\r\n", "b")
    assert rec.faces.tolist() == [[0, 1, 2]] and rec.material_names == ["red"]
    # a texcoord defined after the face that uses it (positive indices may point forward)
    assert rec.face_texcoords.tolist() == [[0, 0, 0]]


@pytest.mark.parametrize(
    "data, message",
    [
        ("v 0 0 0\nv 1 0 0\nv 0 1 0\nf 1 2 3\n".encode("utf-16"), "not a UTF-8 text OBJ.*UTF-16"),
        (b"\x00\x01\x02v 0 0 0\n", "not a UTF-8 text OBJ.*binary"),
        (b"v 0 0 0\nv 1 0 0\nv 0 1 0\nf 1 2 7\n", "line 4: vertex index 7 out of range"),
        (b"v 0 0 0\nv 1 0 0\nf -3 1 2\nv 0 1 0\n", "line 3: vertex index -3 out of range.*2 before this line"),
        (b"v 0 0 0\nv 1 0 0\nv 0 1 0\nf 0 1 2\n", "line 4: vertex index 0"),
        (b"v 0 0 0\nv 1 0 0\nv 0 1 0\nvt 0 0\nf 1/1 2/2 3/1\n", "line 5: texture index 2 out of range"),
        (b"v 0 0 0\nv 1 0 0\nv 0 1 0\nf 1 2 3.5\n", "line 4: bad face 'f 1 2 3.5'"),
        (b"v 0 0 0\nv 1 zero 0\nv 0 1 0\nf 1 2 3\n", "line 2: bad 'v' record 'v 1 zero 0'"),
        (b"v 0 0 0\nv 1 0\nf 1 2 3\n", "line 2: 'v' needs at least 3 numbers"),
        (b"v 0 0 0\nv 1 0 0\nv 0 1 0\nf 1 2\n", "line 4: a face needs at least 3 corners"),
        (b"v 0 0 0\nv 1 0 0\nv 0 1 0\nf 1/1/ 2/x 3\n", "line 4: bad face 'f 1/1/ 2/x 3'"),
        (b"# only a comment\n", "no vertices or no faces"),
    ],
)
def test_errors_name_the_file_line_and_value(data, message):
    with pytest.raises(ObjSyntaxError, match=f"'bad.obj'.*{message}"):
        parse_obj(data, "bad.obj")


def test_mtl_colours_images_and_options(tmp_path):
    (tmp_path / "a.png").write_bytes(b"")
    (tmp_path / "sub").mkdir()
    mtl = tmp_path / "sub" / "m.mtl"
    mtl.write_text(
        "# materials\nnewmtl grey\nKd 0.5\nnewmtl rgb\nKd 0.1 0.2 0.3\n"
        "newmtl tex\nmap_Kd -s 1 1 1 ..\\a.png\nnewmtl softras\nmap_Kd a.png\nnewmtl spaced\nmap_Kd my wood.png\n"
        "newmtl gone\nmap_Kd -bm 0.2 missing.jpg\n"
    )
    (tmp_path / "sub" / "my wood.png").write_bytes(b"")
    materials = read_mtl(mtl, obj_dir=tmp_path)
    assert materials["grey"].color == (0.5, 0.5, 0.5) and materials["rgb"].color == (0.1, 0.2, 0.3)
    assert materials["tex"].image_path == tmp_path / "sub" / ".." / "a.png"
    assert materials["softras"].image_path == tmp_path / "a.png"  # only next to the OBJ: SoftRas's place
    assert materials["spaced"].image_path == tmp_path / "sub" / "my wood.png"
    assert materials["gone"].image_path == tmp_path / "sub" / "missing.jpg"  # named in the error later
    mtl.write_text("newmtl x\nKd red\n")
    with pytest.raises(ObjSyntaxError, match="m.mtl.*line 2"):
        read_mtl(mtl)
