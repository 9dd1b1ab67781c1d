"""A vectorized reader for the records of Wavefront OBJ and MTL files (numpy only, no torch).

Why not trimesh: it splits vertices per material and along UV seams, so the file's vertex order
(and SoftRas's indexing) is lost on multi-material files. This reader keeps the file's order:

* ``v x y z [w]`` and ``v x y z r g b``: vertices in file order (colours when every line has them);
* ``vt u v [w]``: texture coordinates;
* ``f`` with ``v``, ``v/vt``, ``v//vn`` or ``v/vt/vn`` corners, any number of corners (polygons are
  fan-triangulated (0, i, i + 1), as SoftRas does), positive indices (1-based) or negative ones
  (relative to the records read so far, per the OBJ rules);
* ``usemtl`` (the material of the faces that follow) and ``mtllib`` (MTL file names);
* everything else (``vn``, ``g``, ``o``, ``s``, ``l``, comments) is ignored.

Speed: the file is scanned as a byte array; each group of lines with one layout (say, quads of
``v/vt`` corners) is parsed by one ``np.fromstring`` call, so a 1M-face file loads in seconds.
Errors name the file, the line and the offending value.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np

_NL, _SPACE, _TAB, _CR, _SLASH = 10, 32, 9, 13, 47
_BLANK = np.zeros(256, dtype=bool)
_BLANK[[_NL, _SPACE, _TAB, _CR]] = True


@dataclass
class ObjRecords:
    """The records of one OBJ file (0-based indices, file order).

    vertices ``(N, 3)`` float64; vertex_colors ``(N, 3)`` float64 or None (unless every ``v`` line
    has them); texcoords ``(T, 2)`` float64; faces ``(F, 3)`` int64 vertex indices; face_texcoords
    ``(F, 3)`` int64 indices into texcoords, -1 for faces without ``vt``; face_material ``(F,)``
    int64 index into material_names, -1 before any ``usemtl``; mtllibs: the ``mtllib`` names."""

    vertices: np.ndarray
    vertex_colors: np.ndarray | None
    texcoords: np.ndarray
    faces: np.ndarray
    face_texcoords: np.ndarray
    face_material: np.ndarray
    material_names: list[str]
    mtllibs: list[str]


class ObjSyntaxError(ValueError):
    """A malformed OBJ/MTL file; the message names the file and, where known, the line."""


def _error(name: str, why: str, line: int | None = None) -> ObjSyntaxError:
    where = f" line {line}" if line is not None else ""
    return ObjSyntaxError(f"filename_obj {name!r}{where}: {why}")


def _text_bytes(data: bytes, name: str) -> bytes:
    """The file's bytes ready to scan: checked to be text, comments and leading blanks removed, one
    trailing newline. Line numbers are kept (only whole-line content is removed)."""
    if data.startswith((b"\xff\xfe", b"\xfe\xff")) or b"\x00" in data:
        kind = "UTF-16 text" if data.startswith((b"\xff\xfe", b"\xfe\xff")) else "binary (NUL bytes)"
        raise _error(name, f"not a UTF-8 text OBJ: the file looks like {kind}")
    if data.startswith(b"\xef\xbb\xbf"):  # UTF-8 byte order mark
        data = data[3:]
    if b"#" in data:
        data = re.sub(rb"#[^\n]*", b"", data)
    if data.startswith((b" ", b"\t")) or b"\n " in data or b"\n\t" in data:
        data = re.sub(rb"(?m)^[ \t]+", b"", data)
    return data if data.endswith(b"\n") else data + b"\n"


class _Lines:
    """Line geometry of a byte buffer: start/end offsets (end includes the newline) and, per line,
    the counts of whitespace-separated tokens, of '/' and of '//'."""

    def __init__(self, data: bytes):
        a = self.arr = np.frombuffer(data, dtype=np.uint8)
        self.ends = np.flatnonzero(a == _NL) + 1
        self.starts = np.concatenate(([0], self.ends[:-1]))
        blank = _BLANK[a]
        tok_start = ~blank
        tok_start[1:] &= blank[:-1]
        slash = np.flatnonzero(a == _SLASH)
        self.tokens = self._per_line(np.flatnonzero(tok_start))
        self.slashes = self._per_line(slash)
        self.doubles = self._per_line(slash[1:][np.diff(slash) == 1])
        self._bytes: dict[int, np.ndarray] = {}

    def _per_line(self, positions: np.ndarray) -> np.ndarray:
        """How many of the sorted byte ``positions`` fall in each line."""
        return np.diff(np.searchsorted(positions, np.append(self.starts, len(self.arr))))

    def byte(self, offset: int) -> np.ndarray:
        """Byte ``offset`` of each line (0 past its end)."""
        if offset not in self._bytes:
            pos = self.starts + offset
            self._bytes[offset] = np.where(pos < self.ends, self.arr[np.minimum(pos, len(self.arr) - 1)], 0)
        return self._bytes[offset]

    def keyword(self, word: bytes) -> np.ndarray:
        """Lines whose first token is ``word``."""
        mask = np.ones(len(self.starts), dtype=bool)
        for k, c in enumerate(word):
            mask &= self.byte(k) == c
        after = self.byte(len(word))
        return mask & ((after == _SPACE) | (after == _TAB) | (after == _CR) | (after == _NL) | (after == 0))

    def text(self, line: int) -> str:
        return bytes(self.arr[self.starts[line] : self.ends[line]]).decode("utf-8", "surrogateescape").strip()

    def gather(self, lines: np.ndarray, skip: int, slashes_to_blanks: bool = False) -> bytes:
        """The bytes of ``lines`` (each with its newline) without their first ``skip`` bytes."""
        keep = np.zeros(len(self.starts), dtype=bool)
        keep[lines] = True
        mask = np.repeat(keep, self.ends - self.starts)
        for k in range(skip):
            mask[self.starts[lines] + k] = False
        out = self.arr[mask]
        if slashes_to_blanks:
            out = np.where(out == _SLASH, np.uint8(_SPACE), out)
        return out.tobytes()


def _numbers(lines: _Lines, sel: np.ndarray, skip: int, per_line: int, dtype, name: str, what: str,
             slashes: bool = False) -> np.ndarray:
    """``(len(sel), per_line)`` numbers of the selected lines (one layout), or an error naming the
    first line that does not parse."""
    buf = lines.gather(sel, skip, slashes)
    try:
        values = np.fromstring(buf, dtype=dtype, sep=" ")
        if values.size == len(sel) * per_line:
            return values.reshape(len(sel), per_line)
    except ValueError:
        pass
    for line in sel:  # slow path, only to locate the bad line
        text = lines.text(line)
        parts = text.split(None, 1)
        body = parts[1] if len(parts) > 1 else ""
        try:
            np.fromstring(body.replace("/", " ") if slashes else body, dtype=dtype, sep=" ")
        except ValueError:
            raise _error(name, f"bad {what} {text!r}", line + 1) from None
    raise _error(name, f"bad {what} records")


def _vertex_table(lines: _Lines, sel: np.ndarray, name: str, keyword: str, least: int) -> tuple[np.ndarray, np.ndarray]:
    """Values of ``keyword`` lines ``(len(sel), max count)`` (NaN-padded) and each line's count."""
    counts = lines.tokens[sel] - 1
    short = np.flatnonzero(counts < least)
    if len(short):
        line = sel[short[0]]
        raise _error(name, f"'{keyword}' needs at least {least} numbers, got {lines.text(line)!r}", line + 1)
    table = np.full((len(sel), counts.max(initial=least)), np.nan)
    for count in np.unique(counts):
        rows = np.flatnonzero(counts == count)
        table[rows, :count] = _numbers(lines, sel[rows], len(keyword), int(count), np.float64, name, f"'{keyword}' record")
    return table, counts


#: Face-corner layouts by (slashes, doubles) per corner: the numbers per corner, and where vt sits.
_LAYOUTS = {(0, 0): (1, None), (1, 0): (2, 1), (2, 1): (2, None), (2, 0): (3, 1)}


def _resolve(idx: np.ndarray, before: np.ndarray, total: int, name: str, lines: np.ndarray, what: str) -> np.ndarray:
    """OBJ indices ``(n, c)`` of lines ``(n,)`` -> 0-based: i > 0 counts from 1, i < 0 from the
    records read before the line; 0 and out-of-range indices are errors naming line and index."""
    out = np.where(idx > 0, idx - 1, before[:, None] + idx)
    bad = (idx == 0) | (out < 0) | (out >= total)
    if bad.any():
        r, c = np.argwhere(bad)[0]
        raise _error(
            name, f"{what} index {idx[r, c]} out of range (the file has {total} {what} records, "
            f"{before[r]} before this line)", int(lines[r]) + 1,
        )
    return out


def _fan(corners: np.ndarray) -> np.ndarray:
    """Fan triangulation (0, i, i + 1) of polygons ``(n, c)`` -> ``(n, c - 2, 3)``."""
    c = corners.shape[1]
    return np.stack((np.repeat(corners[:, :1], c - 2, axis=1), corners[:, 1:-1], corners[:, 2:]), axis=-1)


def _polygon_corners(text: str, name: str, line: int) -> tuple[list[int], list[int] | None]:
    """Slow path for a face line with mixed corner layouts: vertex and vt indices (None if any
    corner lacks a vt)."""
    vs, vts = [], []
    for token in text.split()[1:]:
        parts = token.split("/")
        try:
            vs.append(int(parts[0]))
            vts.append(int(parts[1]) if len(parts) > 1 and parts[1] else None)
        except ValueError:
            raise _error(name, f"bad face corner {token!r} in {text!r}", line + 1) from None
    return vs, (None if None in vts else vts)


def _faces(lines: _Lines, sel: np.ndarray, v_before: np.ndarray, vt_before: np.ndarray, n_v: int, n_vt: int,
           name: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Triangles ``(F, 3)``, their vt indices ``(F, 3)`` (-1: none) and their line ``(F,)``, in file
    order."""
    corners = lines.tokens[sel] - 1
    short = np.flatnonzero(corners < 3)
    if len(short):
        line = sel[short[0]]
        raise _error(name, f"a face needs at least 3 corners, got {lines.text(line)!r}", line + 1)
    slashes, doubles = lines.slashes[sel], lines.doubles[sel]
    layout = np.full(len(sel), -1)
    for code, (s, d) in enumerate(_LAYOUTS):
        layout[(slashes == s * corners) & (doubles == d * corners)] = code
    parts_v, parts_vt, parts_line = [], [], []
    for code, ((s, d), (per_corner, vt_at)) in enumerate(_LAYOUTS.items()):
        rows = np.flatnonzero(layout == code)
        for c in np.unique(corners[rows]):
            group = rows[corners[rows] == c]
            ids = sel[group]
            nums = _numbers(lines, ids, 1, int(c) * per_corner, np.int64, name, "face", slashes=True)
            nums = nums.reshape(len(ids), int(c), per_corner)
            v = _resolve(nums[..., 0], v_before[group], n_v, name, ids, "vertex")
            vt = (_resolve(nums[..., vt_at], vt_before[group], n_vt, name, ids, "texture")
                  if vt_at is not None else np.full_like(v, -1))
            parts_v.append(_fan(v).reshape(-1, 3))
            parts_vt.append(_fan(vt).reshape(-1, 3))
            parts_line.append(np.repeat(ids, int(c) - 2))
    for k in np.flatnonzero(layout < 0):
        line = sel[k]
        vs, vts = _polygon_corners(lines.text(line), name, line)
        v = _resolve(np.asarray([vs]), v_before[k : k + 1], n_v, name, sel[k : k + 1], "vertex")
        vt = (_resolve(np.asarray([vts]), vt_before[k : k + 1], n_vt, name, sel[k : k + 1], "texture")
              if vts is not None else np.full_like(v, -1))
        parts_v.append(_fan(v).reshape(-1, 3))
        parts_vt.append(_fan(vt).reshape(-1, 3))
        parts_line.append(np.repeat(line, len(vs) - 2))
    if not parts_v:
        return np.zeros((0, 3), np.int64), np.zeros((0, 3), np.int64), np.zeros(0, np.int64)
    face_line = np.concatenate(parts_line)
    order = np.argsort(face_line, kind="stable")  # groups keep each line's fan order
    return np.concatenate(parts_v)[order], np.concatenate(parts_vt)[order], face_line[order]


def parse_obj(data: bytes, name: str) -> ObjRecords:
    """Parse the bytes of an OBJ file (``name`` is used in error messages)."""
    lines = _Lines(_text_bytes(data, name))
    is_v, is_vt, is_f = lines.keyword(b"v"), lines.keyword(b"vt"), lines.keyword(b"f")
    v_sel, vt_sel, f_sel = np.flatnonzero(is_v), np.flatnonzero(is_vt), np.flatnonzero(is_f)
    if len(v_sel) == 0 or len(f_sel) == 0:
        raise _error(name, "no vertices or no faces ('v' and 'f' records)")
    v_table, v_counts = _vertex_table(lines, v_sel, name, "v", 3)
    vt_table = _vertex_table(lines, vt_sel, name, "vt", 2)[0] if len(vt_sel) else np.zeros((0, 2))
    colors = v_table[:, 3:6] if (v_counts >= 6).all() else None  # SoftRas: 'v x y z r g b'

    v_before = np.cumsum(is_v)[f_sel]  # records before each face line (for negative indices)
    vt_before = np.cumsum(is_vt)[f_sel]
    faces, face_vt, face_line = _faces(lines, f_sel, v_before, vt_before, len(v_sel), len(vt_sel), name)

    material_ids: dict[str, int] = {}
    line_material = np.full(len(lines.starts), -1)
    for line in np.flatnonzero(lines.keyword(b"usemtl")):
        words = lines.text(line).split(None, 1)
        line_material[line] = material_ids.setdefault(words[1] if len(words) > 1 else "", len(material_ids))
    # Each line takes the material of the last 'usemtl' at or before it.
    last = np.maximum.accumulate(np.where(line_material >= 0, np.arange(len(line_material)), -1))
    face_material = np.where(last[face_line] >= 0, line_material[np.maximum(last[face_line], 0)], -1)
    mtllibs = [lines.text(line).split(None, 1)[1] for line in np.flatnonzero(lines.keyword(b"mtllib"))
               if len(lines.text(line).split(None, 1)) > 1]
    return ObjRecords(v_table[:, :3], colors, vt_table[:, :2], faces, face_vt, face_material, list(material_ids), mtllibs)


@dataclass
class Material:
    """One MTL material: diffuse colour ``Kd`` and/or the path of its ``map_Kd`` image."""

    color: tuple[float, float, float] | None = None
    image_path: Path | None = None


def _image_path(spec: str, mtl_dir: Path, obj_dir: str | Path | None) -> Path:
    """The file a ``map_Kd`` names: its last word (options such as ``-s 1 1 1`` come first), or the
    whole rest of the line if that is a file (names with spaces); '\\' read as '/'; looked up next
    to the MTL, then next to the OBJ (where SoftRas looks). Unresolved: next to the MTL."""
    names = [spec.replace("\\", "/"), spec.split()[-1].replace("\\", "/")]
    for folder in [mtl_dir] + ([Path(obj_dir)] if obj_dir is not None else []):
        for name in names:
            if (folder / name).is_file():
                return folder / name
    return mtl_dir / names[1]


def read_mtl(path: str | Path, obj_dir: str | Path | None = None) -> dict[str, Material]:
    """Materials of an MTL file: ``Kd`` colours (``Kd r`` means grey r) and ``map_Kd`` image paths
    (see :func:`_image_path`; ``obj_dir`` is the OBJ's folder)."""
    path = Path(path)
    materials: dict[str, Material] = {}
    current = None
    text = re.sub(r"#[^\n]*", "", path.read_bytes().decode("utf-8", "surrogateescape"))
    for number, line in enumerate(text.splitlines(), 1):
        parts = line.split()
        if not parts:
            continue
        if parts[0] == "newmtl":
            current = materials.setdefault(line.split(None, 1)[1].strip() if len(parts) > 1 else "", Material())
        elif current is not None and parts[0] == "Kd" and len(parts) >= 2:
            try:
                values = [float(c) for c in parts[1:4]]
            except ValueError:
                raise ObjSyntaxError(f"MTL file {str(path)!r} line {number}: bad Kd {line.strip()!r}") from None
            current.color = tuple((values + values[:1] * 2)[:3])  # 'Kd r' means grey r
        elif current is not None and parts[0] == "map_Kd" and len(parts) > 1:
            current.image_path = _image_path(line.split(None, 1)[1].strip(), path.parent, obj_dir)
    return materials
