"""What the identity checks catch on real photos, and the distances behind SAME_PERSON and DIFFERENT_PERSON.

Builds enrolment trees in a temporary directory from the sample photos (../shared/faces, or
$FACELOGIN_FACES): the untouched tree, then trees with photos moved, copied or mixed between users,
each as a sync would meet it (the untouched photos established, the moved or added ones new).
Every tree is read back from disk (sha256 of each file, facelogin.faces.encode_face once per
content) and checked with facelogin.sync.identity.check_identities. Printed:

- the same-person and different-person distance ranges over all the one-face sample photos
  (identities from MANIFEST.csv), and where the chosen thresholds sit between them;
- per kind of mistake, how many trees had it caught, each miss, and one reason as an example;
- photos rejected that were not part of a mistake (false rejections);
- the same counts for other threshold pairs, to show the range that works.

    .venv/bin/python -m bench.identity [--faces ../shared/faces]
"""

from __future__ import annotations

import argparse
import csv
import hashlib
import itertools
import shutil
import statistics
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from facelogin.faces import ENCODED, encode_face
from facelogin.login.match import DEFAULT_MARGIN, DEFAULT_THRESHOLD
from facelogin.sync.identity import DIFFERENT_PERSON, SAME_PERSON, Candidate, IdentityCheck, check_identities
from tests.servers import faces_root


@dataclass
class Tree:
    """An enrolment tree to build: ref -> (source photo, established), and the refs that must be caught."""

    kind: str
    name: str
    photos: dict[str, tuple[Path, bool]]
    bad: set[str] = field(default_factory=set)
    conflict: bool = False  # a mistake that must also be reported as a conflict between two users


@dataclass
class Checked:
    tree: Tree
    candidates: list[Candidate]


def read_manifest(root: Path) -> dict[Path, str]:
    """Photo path -> identity, for the one-face photos (enrolment and probes)."""
    with (root / "MANIFEST.csv").open(newline="") as fh:
        return {
            root / r["path"]: r["identity"] for r in csv.DictReader(fh) if r["role"] in {"enrol", "probe"}
        }


def sample_tree(root: Path) -> dict[str, tuple[Path, bool]]:
    return {f"{p.parent.name}/{p.name}": (p, True) for p in sorted(root.glob("images/*/*"))}


def without_users(photos: dict[str, tuple[Path, bool]], *users: str) -> dict[str, tuple[Path, bool]]:
    return {ref: v for ref, v in photos.items() if ref.split("/")[0] not in users}


def trees(root: Path, identity: dict[Path, str]) -> list[Tree]:
    base = sample_tree(root)
    users = sorted({ref.split("/")[0] for ref in base})
    probes = sorted(root.glob("probes/*"))
    out = [Tree("untouched", "sample tree, established", dict(base))]
    first = {ref: (p, False) for ref, (p, _) in base.items()}
    first |= {f"{p.stem}/probe_{p.name}": (p, False) for p in probes}
    out.append(Tree("untouched", "first sync, probes added to their users", first))

    for ref, (photo, _) in base.items():
        owner = ref.split("/")[0]
        for other in users:
            if other != owner:
                photos = {r: v for r, v in base.items() if r != ref}
                moved = f"{other}/{photo.name}"
                photos[moved] = (photo, False)
                out.append(Tree("moved to another user", f"{ref} -> {other}", photos, {moved}))
    for probe in probes:
        for other in users:
            if other != identity[probe]:
                added = f"{other}/probe_{probe.name}"
                out.append(
                    Tree(
                        "probe added to another user",
                        f"{probe.stem} -> {other}",
                        base | {added: (probe, False)},
                        {added},
                    )
                )
    for ref, (photo, _) in base.items():
        copy = f"Copy_{ref.split('/')[0]}/{photo.name}"
        out.append(
            Tree("same file, second user", f"{ref} -> {copy}", base | {copy: (photo, False)}, {copy}, True)
        )
    for owner in users:
        own = sorted(r for r in base if r.startswith(f"{owner}/"))
        for ref in own if len(own) > 1 else []:
            photos = {r: v for r, v in base.items() if r != ref}
            split = f"{owner}_2/{Path(ref).name}"
            photos[split] = (base[ref][0], False)
            out.append(Tree("user split over two names", f"{ref} -> {split}", photos, {split}, True))
    for probe in probes:
        new = f"{probe.stem}_2/{probe.name}"
        out.append(Tree("probe as a second username", new, base | {new: (probe, False)}, {new}, True))
    for probe in probes:
        for owner in users:
            stranger = identity[probe]
            if owner != stranger and sum(r.startswith(f"{owner}/") for r in base) > 1:
                added = f"{owner}/stranger_{probe.name}"
                photos = without_users(base, stranger) | {added: (probe, False)}
                out.append(Tree("stranger added to a user", f"{probe.stem} -> {owner}", photos, {added}))
    firsts = {ref.split("/")[0]: (ref, p) for ref, (p, _) in reversed(base.items())}
    for a, b in itertools.combinations(users, 2):
        (_, pa), (_, pb) = firsts[a], firsts[b]
        mixed = {f"Newcomer/{pa.name}": (pa, False), f"Newcomer/{pb.name}": (pb, False)}
        photos = without_users(base, a, b) | mixed
        out.append(Tree("new user, two people", f"{a} + {b}", photos, set(mixed)))
    return out


class Encoder:
    """encode_face once per file content, as the sync's encoding store does."""

    def __init__(self) -> None:
        self.by_sha: dict[str, list[float]] = {}

    def candidates(self, folder: Path, tree: Tree) -> list[Candidate]:
        out = []
        for path in sorted(folder.glob("*/*")):
            ref = f"{path.parent.name}/{path.name}"
            sha = hashlib.sha256(path.read_bytes()).hexdigest()
            if sha not in self.by_sha:
                result = encode_face(path)
                if result.status != ENCODED or result.encoding is None:
                    raise SystemExit(f"{path}: {result.reason}")
                self.by_sha[sha] = result.encoding
            out.append(Candidate(ref, path.parent.name, sha, self.by_sha[sha], tree.photos[ref][1]))
        return out


def build(tree: Tree, folder: Path) -> None:
    for ref, (source, _) in tree.photos.items():
        target = folder / ref
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(source, target)


def distance_ranges(identity: dict[Path, str]) -> tuple[list[float], list[float]]:
    encodings = {}
    for path in identity:
        result = encode_face(path)
        if result.encoding is not None:
            encodings[path] = np.asarray(result.encoding)
    genuine, impostor = [], []
    for a, b in itertools.combinations(sorted(encodings), 2):
        d = float(np.linalg.norm(encodings[a] - encodings[b]))
        (genuine if identity[a] == identity[b] else impostor).append(d)
    return genuine, impostor


def score(checked: list[Checked], run: Callable[[list[Candidate]], IdentityCheck]) -> dict[str, list[str]]:
    """kind -> one line per tree: '' when caught cleanly, else what went wrong."""
    out: dict[str, list[str]] = {}
    for item in checked:
        result = run(item.candidates)
        problems = []
        missed = item.tree.bad - set(result.rejected)
        if missed:
            told = ", ".join(f"{c['kind']} {c['users']} d={c['distance']}" for c in result.conflicts)
            problems.append(f"missed {sorted(missed)}" + (f" (reported: {told})" if told else ""))
        false = set(result.rejected) - item.tree.bad
        if false:
            problems.append("also rejected " + "; ".join(f"{r}: {result.rejected[r]}" for r in sorted(false)))
        if item.tree.conflict and not any(c["rejected"] for c in result.conflicts):
            problems.append("no conflict resolved")
        out.setdefault(item.tree.kind, []).append(
            f"{item.tree.name}: {', '.join(problems)}" if problems else ""
        )
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--faces", type=Path, default=faces_root())
    args = parser.parse_args()
    if args.faces is None or not (args.faces / "MANIFEST.csv").is_file():
        raise SystemExit("sample photos not found: pass --faces or set FACELOGIN_FACES")
    root = args.faces.resolve()
    identity = read_manifest(root)

    genuine, impostor = distance_ranges(identity)
    print(
        f"facelogin identity bench: {len(identity)} one-face photos of {len(set(identity.values()))} people"
    )
    print(
        f"same person:      {len(genuine):>3} pairs, {min(genuine):.3f} - {max(genuine):.3f} "
        f"(median {statistics.median(genuine):.3f})"
    )
    print(
        f"different people: {len(impostor):>3} pairs, {min(impostor):.3f} - {max(impostor):.3f} "
        f"(median {statistics.median(impostor):.3f})"
    )
    print(f"login: accepts below {DEFAULT_THRESHOLD} with a {DEFAULT_MARGIN} margin")
    print(
        f"SAME_PERSON = {SAME_PERSON} (across users): {min(impostor) - SAME_PERSON:.3f} below the nearest "
        f"two people; {sum(g >= SAME_PERSON for g in genuine)} same-person pair(s) at or above it"
    )
    print(
        f"DIFFERENT_PERSON = {DIFFERENT_PERSON} (within a user): {DIFFERENT_PERSON - max(genuine):.3f} above "
        f"the widest same-person pair, {min(impostor) - DIFFERENT_PERSON:.3f} below the nearest two people\n"
    )

    encoder = Encoder()
    checked = []
    with tempfile.TemporaryDirectory(prefix="facelogin-identity-") as tmp:
        for n, tree in enumerate(trees(root, identity)):
            folder = Path(tmp) / f"tree-{n:03d}"
            build(tree, folder)
            checked.append(Checked(tree, encoder.candidates(folder, tree)))
    print(f"{len(checked)} trees built and read back; {len(encoder.by_sha)} distinct photos encoded\n")

    chosen = score(checked, check_identities)
    print(f"{'mistake':<30} {'trees':>5} {'clean':>6}  example reason")
    for kind, lines in chosen.items():
        example = next(
            (
                f"{ref}: {reason}"
                for item in checked
                if item.tree.kind == kind and item.tree.bad
                for ref, reason in check_identities(item.candidates).rejected.items()
            ),
            "-",
        )
        print(f"{kind:<30} {len(lines):>5} {sum(not line for line in lines):>6}  {example}")
        for line in lines:
            if line:
                print(f"    {line}")
    alarms = [
        f"{item.tree.name}: {c['users']} d={c['distance']}"
        for item in checked
        if not item.tree.conflict
        for c in check_identities(item.candidates).conflicts
        if c["kind"] == "lookalike"
    ]
    print(f"lookalike reports in trees with no user split: {len(alarms)}", *alarms, sep="\n    ")

    print(
        f"\nother thresholds: trees handled cleanly (of {len(checked)}); "
        "SAME_PERSON across, DIFFERENT_PERSON down"
    )
    sames = [0.40, 0.45, 0.50, 0.55, 0.60, 0.65]
    print("        " + "".join(f"{s:>7.2f}" for s in sames))
    for different in [0.50, 0.55, 0.60, 0.65, 0.70]:
        row = []
        for same in sames:
            if same > different:
                row.append(f"{'':>7}")
                continue
            lines = score(checked, lambda c, s=same, d=different: check_identities(c, s, d))
            row.append(f"{sum(not line for ls in lines.values() for line in ls):>7}")
        print(f"{different:>8.2f}" + "".join(row))


if __name__ == "__main__":
    main()
