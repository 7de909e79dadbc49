"""Rebuild the recognition evaluation set (bench/recognition_set.csv) from local git mirrors of its sources.

The photos are third-party likenesses: they are never committed here, only where each one comes
from (repository, path, commit) and its sha256. This script copies each one out of a local mirror
of its repository into the layout `python -m bench.recognition --set DIR` reads:

    DIR/enrol/<Identity>/*.jpg   photos an identity is enrolled from
    DIR/probes/<Identity>.jpg    another photo of that identity, not used for enrolment
    DIR/strangers/*.jpg          one photo each of people who are not enrolled
    DIR/MANIFEST.csv             the rows used, with source repository, path, commit and sha256

A mirror of `owner/name` is looked for under each --mirrors root as `owner+name/repo`,
`owner+name`, `owner/name` or `name` (a bare git directory or a clone); the photo is read with
`git show <commit>:<path>` and its sha256 checked, so the set is byte-for-byte the one measured.

How the rows were chosen (once, recorded in the manifest): identities are the sources' own labels
(folder names, or the same-person pairs in deepface's test CSVs, anonymised as Deepface_NN);
only photos in which the sync finds exactly one face of at least 72 px were kept; an identity
needs four such photos (up to four enrolled, the last one, or the source's own test photo, as the
probe). Strangers are people with too few photos to enrol, one photo each: a photo closer than
0.45 to an earlier stranger was taken for the same person and left out; facenet-pytorch's
angelina_jolie was left out as the person of an enrolled deepface identity (0.31-0.45 from all
eight of its photos), and face-api.js's test/images/face1.png and face2.png as crops of enrolled
photos (distance 0.00). Then 50 more identities and 59 more strangers from LFW's original 250 px
photos as committed in baileyfriend/Gender-Image-Classifier (at the commit that still holds
them), none of them already in the set or in ../shared/faces: people LFW has five or more photos of,
the same rule (one face of at least 72 px, four enrolled, the last as the probe; three enrolled
where only four qualify), and for strangers the first photo of people LFW has one or two of,
taken evenly through the alphabet (one showing two faces left out). Lookalikes were kept on
purpose: Venus and Serena Williams, Michelle Kwan and Michelle Yeoh. The set: 90 identities, 356
enrolment photos, 90 probes, 103 strangers, from 10 repositories.

    python -m bench.recognition_set --out /work/evalset [--mirrors /work/.mirror]
"""

from __future__ import annotations

import argparse
import csv
import hashlib
import shutil
import subprocess
import sys
from pathlib import Path

MANIFEST = Path(__file__).with_name("recognition_set.csv")


def find_mirror(roots: list[Path], repo: str) -> Path | None:
    owner, name = repo.split("/", 1)
    for root in roots:
        for candidate in (
            root / f"{owner}+{name}" / "repo",
            root / f"{owner}+{name}",
            root / owner / name,
            root / name,
        ):
            if candidate.is_dir() and ((candidate / "HEAD").is_file() or (candidate / ".git").exists()):
                return candidate
    return None


def read_blob(mirror: Path, commit: str, path: str) -> bytes:
    done = subprocess.run(
        ["git", "-C", str(mirror), "show", f"{commit}:{path}"], capture_output=True, check=False
    )
    if done.returncode != 0:
        raise LookupError(done.stderr.decode(errors="replace").strip())
    return done.stdout


def rebuild(out: Path, roots: list[Path], manifest: Path = MANIFEST) -> tuple[int, list[str]]:
    """Write every row of `manifest` under `out`; returns the count written and the problems met."""
    with manifest.open(newline="") as fh:
        rows = list(csv.DictReader(fh))
    problems: list[str] = []
    written = []
    for row in rows:
        mirror = find_mirror(roots, row["source_repo"])
        if mirror is None:
            problems.append(f"{row['path']}: no local mirror of {row['source_repo']}")
            continue
        try:
            data = read_blob(mirror, row["source_commit"], row["source_path"])
        except LookupError as exc:
            problems.append(f"{row['path']}: {row['source_repo']}@{row['source_commit'][:12]}: {exc}")
            continue
        if hashlib.sha256(data).hexdigest() != row["sha256"]:
            problems.append(f"{row['path']}: sha256 differs from the manifest")
            continue
        target = out / row["path"]
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(data)
        written.append(row)
    if written:
        with (out / "MANIFEST.csv").open("w", newline="") as fh:
            writer = csv.DictWriter(fh, fieldnames=list(written[0]), lineterminator="\n")
            writer.writeheader()
            writer.writerows(written)
    return len(written), problems


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, required=True, help="folder to (re)build; emptied first")
    parser.add_argument("--mirrors", type=Path, action="append", help="where mirrors are (repeatable)")
    args = parser.parse_args(argv)
    roots = args.mirrors or [Path("/work/.mirror")]
    if args.out.exists():
        for sub in ("enrol", "probes", "strangers"):
            shutil.rmtree(args.out / sub, ignore_errors=True)
    count, problems = rebuild(args.out, roots)
    for problem in problems:
        print(problem, file=sys.stderr)
    print(f"{count} photos written to {args.out}" + (f", {len(problems)} missing" if problems else ""))
    return 1 if problems else 0


if __name__ == "__main__":
    raise SystemExit(main())
