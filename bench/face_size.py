"""Where dlib's encodings stop being trustworthy as the face gets smaller: the measurement behind MIN_FACE_PX.

Each sample photo with one face (images/ and probes/ of ../shared/faces, or $FACELOGIN_FACES) is
scaled down so that its face is N px wide, for N on a fine grid, saved losslessly (PNG: only the
resolution changes) and encoded with facelogin.faces.encode_face as the sync does it, with the
face-size gate switched off so that the encoder itself is measured. For each shrunk photo:

- found: whether the face is still detected (HOG, one upsampling retry);
- box: the width of the face box the detector reports, which is what the gate compares;
- drift: distance from the photo's own full-size encoding (what the lost resolution costs);
- genuine: distance to the nearest full-size encoding of the same user's *other* photos;
- impostor: distance to the nearest full-size encoding of any other user;
- margin: impostor - genuine (the identity check needs it positive, login wants >= 0.1).

Printed twice, as medians with the worst case: by the face width asked for (N), and by the box
width the detector reported. HOG reports boxes on its pyramid's scales (each 1.2x the last:
... 43, 52, 62, 72, 86, 104 px), so many true widths share one box width.

    .venv/bin/python -m bench.face_size [--faces ../shared/faces] [--smallest 24 --largest 140 --step 4]
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

from facelogin import faces as faces_mod
from facelogin.faces import ENCODED, encode_face
from facelogin.imaging import open_photo
from facelogin.login.match import DEFAULT_MARGIN, DEFAULT_THRESHOLD
from tests.servers import faces_root

# Box widths on the detector's scale ladder: 35, 42, 50, 60, 72, 86, 104, 124, 149, 179 px.
LADDER = [round(72 * 1.2**k) for k in range(-4, 6)]


@dataclass(frozen=True)
class Sample:
    path: Path
    user: str
    encoding: np.ndarray
    face_px: int  # width of the face box in the original photo's pixels


@dataclass(frozen=True)
class Row:
    target: int
    box: int
    drift: float
    genuine: float | None
    impostor: float


@contextmanager
def gate_off() -> Iterator[None]:
    """Measure the encoder itself, not facelogin's refusal of small faces."""
    saved = faces_mod.MIN_FACE_PX
    faces_mod.MIN_FACE_PX = 0
    try:
        yield
    finally:
        faces_mod.MIN_FACE_PX = saved


def samples(root: Path) -> list[Sample]:
    out = []
    for path in sorted(root.glob("images/*/*")) + sorted(root.glob("probes/*")):
        user = path.parent.name if path.parent.name != "probes" else path.stem
        result = encode_face(path)
        if result.status != ENCODED or result.encoding is None or result.face_px is None:
            raise SystemExit(f"{path}: {result.reason}")
        out.append(Sample(path, user, np.asarray(result.encoding), result.face_px))
    return out


def nearest(encoding: np.ndarray, others: list[Sample]) -> float | None:
    if not others:
        return None
    return float(min(np.linalg.norm(encoding - o.encoding) for o in others))


def measure(full: list[Sample], targets: list[int], tmp: Path) -> tuple[list[Row], dict[int, int]]:
    rows, missed = [], dict.fromkeys(targets, 0)
    for sample in full:
        upright = open_photo(sample.path)
        own = [o for o in full if o.user == sample.user and o.path != sample.path]
        other = [o for o in full if o.user != sample.user]
        for n in targets:
            scale = n / sample.face_px
            if scale >= 1.0:
                continue  # never enlarge: that would measure the resampler, not the face
            size = (max(1, round(upright.width * scale)), max(1, round(upright.height * scale)))
            shrunk = tmp / f"{sample.path.stem}-{n}.png"
            upright.resize(size, Image.Resampling.LANCZOS).save(shrunk)
            result = encode_face(shrunk)
            if result.status != ENCODED or result.encoding is None or result.face_px is None:
                missed[n] += 1
                continue
            enc = np.asarray(result.encoding)
            impostor = nearest(enc, other)
            assert impostor is not None
            drift = float(np.linalg.norm(enc - sample.encoding))
            rows.append(Row(n, result.face_px, drift, nearest(enc, own), impostor))
    return rows, missed


def med(values: list[float]) -> str:
    return f"{statistics.median(values):.3f}" if values else "-"


def worst(values: list[float], pick: Callable[[list[float]], float]) -> str:
    return f"{pick(values):.3f}" if values else "-"


HEADER = (
    f"{'photos':>6} {'drift':>6} {'worst':>6} {'genuine':>8} {'worst':>6} {'impostor':>9} {'worst':>6}"
    f" {'margin':>7} {'worst':>6}  genuine >= {DEFAULT_THRESHOLD} / impostor nearer"
)


def line(rows: list[Row]) -> str:
    drift = [r.drift for r in rows]
    genuine = [r.genuine for r in rows if r.genuine is not None]
    impostor = [r.impostor for r in rows]
    margins = [r.impostor - r.genuine for r in rows if r.genuine is not None]
    over = sum(g >= DEFAULT_THRESHOLD for g in genuine)
    wrong = sum(m <= 0 for m in margins)
    return (
        f"{len(rows):>6} {med(drift):>6} {worst(drift, max):>6} {med(genuine):>8} "
        f"{worst(genuine, max):>6} {med(impostor):>9} {worst(impostor, min):>6} {med(margins):>7} "
        f"{worst(margins, min):>6}  {over}/{len(genuine)} / {wrong}"
    )


def level(box: int) -> int:
    return max((w for w in LADDER if w <= box), default=0)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--faces", type=Path, default=faces_root())
    parser.add_argument("--smallest", type=int, default=24, help="narrowest face to try, px")
    parser.add_argument("--largest", type=int, default=140, help="widest face to try, px")
    parser.add_argument("--step", type=int, default=4, help="px between the face widths tried")
    args = parser.parse_args()
    if args.faces is None or not (args.faces / "images").is_dir():
        raise SystemExit("sample photos not found: pass --faces or set FACELOGIN_FACES")
    root = args.faces.resolve()
    targets = list(range(args.smallest, args.largest + 1, args.step))

    with gate_off(), tempfile.TemporaryDirectory(prefix="facelogin-face-size-") as tmp:
        full = samples(root)
        rows, missed = measure(full, targets, Path(tmp))
    widths = [s.face_px for s in full]
    print(f"facelogin face-size bench: {len(full)} photos of {len({s.user for s in full})} people, {root}")
    print(f"full-size faces: {min(widths)}-{max(widths)} px wide (median {statistics.median(widths):.0f})")
    known = [
        g for s in full if (g := nearest(s.encoding, [o for o in full if o.user == s.user and o is not s]))
    ]
    print(
        f"full-size genuine distances: median {statistics.median(known):.3f}, worst {max(known):.3f}; "
        f"login accepts below {DEFAULT_THRESHOLD} with a {DEFAULT_MARGIN} margin\n"
    )

    print("by the face width asked for (N px)")
    print(f"{'N px':>5} {'found':>6} {'box px':>8} {HEADER}")
    for n in targets:
        at = [r for r in rows if r.target == n]
        tried = len(at) + missed[n]
        boxes = sorted({r.box for r in at})
        span = f"{boxes[0]}-{boxes[-1]}" if boxes else "-"
        print(f"{n:>5} {len(at):>3}/{tried:<2} {span:>8} {line(at)}")

    print("\nby the box width the detector reported (what the gate compares)")
    print(f"{'box px':>8} {HEADER}")
    for low in sorted({level(r.box) for r in rows}):
        above = [w for w in LADDER if w > low]
        span = f"{low}-{above[0] - 1}" if above else f"{low}+"
        print(f"{span:>8} {line([r for r in rows if level(r.box) == low])}")

    gate = faces_mod.MIN_FACE_PX
    passed = [r for r in rows if r.box >= gate]
    print(
        f"\nMIN_FACE_PX = {gate}: {len(passed)}/{len(rows)} shrunk photos pass, drift median "
        f"{med([r.drift for r in passed])} worst {worst([r.drift for r in passed], max)}; "
        f"smallest face asked for that passed: {min((r.target for r in passed), default='-')} px"
    )


if __name__ == "__main__":
    main()
