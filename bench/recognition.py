"""Who gets in: a held-out face set, enrolled as the sync enrols it and decided as the login decides.

Reads any folder laid out as

    SET/enrol/<Identity>/*     photos each identity is enrolled from (the sync's images/ tree)
    SET/probes/<Identity>.*    another photo of an enrolled identity (file name = identity)
    SET/strangers/*            photos of people who are not enrolled

(`python -m bench.recognition_set` builds one from public photos). Enrolment goes through the
sync's own encoder (`facelogin.faces.encode_face` with the sync's default settings, as
`facelogin sync` runs it) and its identity checks: what the detector or the checks reject is
counted, not enrolled. The bundle is what the sync would publish. Each probe and stranger is then
read as a login reads an image (reduced to the login height, HOG detection, one descriptor) and
decided by the login's own rule (`facelogin.login.match`: the bundle's, or --rule), with the
default threshold and margin. Printed:

- probes accepted as themselves, accepted as someone else, refused (and why);
- strangers accepted (and as whom);
- per login decision: the match alone, and the descriptor + match (median of several passes);
- per enrolled photo: the encoding cost (median).

The CPU may be shared: times are medians, and the load average is printed with them.

    .venv/bin/python -m bench.recognition --set /work/evalset [--json]
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import statistics
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from facelogin.bundle import Bundle, build_bundle, load_bundle, parse_manifest
from facelogin.faces import ENCODED, FaceResult, encode_face, load_faces
from facelogin.login.frames import DEFAULT_HEIGHT, open_frame
from facelogin.login.match import (
    ACCEPTED,
    DEFAULT_MARGIN,
    DEFAULT_THRESHOLD,
    NEAREST,
    RULES,
    FrameDecision,
    Gallery,
    best_match,
    decide_frame,
)
from facelogin.sync.identity import Candidate, check_identities

PHOTO_SUFFIXES = {".jpg", ".jpeg", ".png", ".webp"}
MATCH_PASSES = 2000


@dataclass
class FaceSet:
    enrol: dict[str, list[Path]]
    probes: list[tuple[str, Path]]
    strangers: list[Path]


def _photos(folder: Path) -> list[Path]:
    if not folder.is_dir():
        return []
    return sorted(p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in PHOTO_SUFFIXES)


def read_set(root: Path) -> FaceSet:
    """The set's three folders; a missing one is empty."""
    enrol_root = root / "enrol"
    enrol = {}
    if enrol_root.is_dir():
        for user in sorted(p for p in enrol_root.iterdir() if p.is_dir()):
            photos = _photos(user)
            if photos:
                enrol[user.name] = photos
    probes = [(p.stem, p) for p in _photos(root / "probes")]
    return FaceSet(enrol, probes, _photos(root / "strangers"))


@dataclass
class Enrolled:
    encodings: dict[str, list[list[float]]]
    rejected: list[dict[str, str]]
    encode_ms: list[float]
    bundle: Bundle


def sync_encoder() -> Callable[[Path], FaceResult]:
    """`encode_face` as `facelogin sync` calls it with its default settings."""
    from facelogin.settings import Settings

    fields = Settings.model_fields
    max_side, upsample = fields["detect_max_side"].default, fields["upsample"].default
    return lambda path: encode_face(path, max_side=max_side, upsample=upsample)


def enrol(face_set: FaceSet, encoder: Callable[[Path], FaceResult] | None = None) -> Enrolled:
    """Encode every enrolment photo with the sync's encoder, check the identities as a first sync
    does (facelogin.sync.identity: what it leaves out is not enrolled), and build the bundle."""
    encode = encoder or sync_encoder()
    candidates: list[Candidate] = []
    rejected, times = [], []
    for user, photos in face_set.enrol.items():
        for photo in photos:
            start = time.perf_counter()
            result = encode(photo)
            times.append((time.perf_counter() - start) * 1000.0)
            ref = f"{user}/{photo.name}"
            if result.status == ENCODED and result.encoding is not None:
                sha = hashlib.sha256(photo.read_bytes()).hexdigest()
                candidates.append(Candidate(ref, user, sha, result.encoding))
            else:
                rejected.append({"file": ref, "reason": result.reason or "rejected"})
    checked = check_identities(candidates)
    encodings: dict[str, list[list[float]]] = {}
    for c in candidates:
        if c.ref in checked.rejected:
            rejected.append({"file": c.ref, "reason": checked.rejected[c.ref]})
        else:
            encodings.setdefault(c.username, []).append(list(c.encoding))
    data, manifest = build_bundle(encodings, {}, "bench", {"detector": "hog"})
    bundle = load_bundle(parse_manifest(json.dumps(manifest).encode(), "bench"), data, "bench")
    return Enrolled(encodings, rejected, times, bundle)


@dataclass
class Descriptor:
    """What the login computes from one image before matching: the faces found and one encoding."""

    faces: int
    encoding: np.ndarray | None
    ms: float


def describe(path: Path, height: int = DEFAULT_HEIGHT) -> Descriptor:
    """The login's descriptor for an image file: reduced, detected (0 then 1 upsampling), encoded."""
    engine = load_faces()
    start = time.perf_counter()
    pixels = np.asarray(open_frame(path, height))
    boxes = engine.face_locations(pixels, number_of_times_to_upsample=0)
    if not boxes:
        boxes = engine.face_locations(pixels, number_of_times_to_upsample=1)
    encoding = None
    if len(boxes) == 1:
        (encoding,) = engine.face_encodings(pixels, known_face_locations=boxes)
        encoding = np.asarray(encoding)
    return Descriptor(len(boxes), encoding, (time.perf_counter() - start) * 1000.0)


Decide = Callable[[Descriptor], FrameDecision]


def login_rule(
    bundle: Bundle,
    threshold: float = DEFAULT_THRESHOLD,
    margin: float = DEFAULT_MARGIN,
    rule: str | None = None,
) -> Decide:
    """The login's decision on one descriptor, against `bundle` (by its own rule unless `rule`)."""
    gallery = Gallery.build(bundle.encodings, bundle.labels, bundle.usernames, rule or bundle.match_rule)

    def decide(d: Descriptor) -> FrameDecision:
        match = best_match(gallery, d.encoding) if d.faces == 1 and d.encoding is not None else None
        return decide_frame(d.faces, match, threshold, margin)

    return decide


@dataclass
class Outcome:
    probes: int = 0
    probes_self: int = 0
    probes_other: list[dict[str, Any]] = field(default_factory=list)
    probes_refused: list[dict[str, Any]] = field(default_factory=list)
    strangers: int = 0
    strangers_accepted: list[dict[str, Any]] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return {
            "probes": self.probes,
            "probes_accepted_as_themselves": self.probes_self,
            "probes_accepted_as_someone_else": len(self.probes_other),
            "probes_refused": len(self.probes_refused),
            "strangers": self.strangers,
            "strangers_accepted": len(self.strangers_accepted),
            "wrong_accepts": self.probes_other + self.strangers_accepted,
            "refused": self.probes_refused,
        }


def _detail(name: str, decision: FrameDecision) -> dict[str, Any]:
    m = decision.match
    return {
        "photo": name,
        "user": m.user if m else None,
        "reason": decision.reason,
        "distance": round(m.distance, 3) if m and m.distance is not None else None,
        "margin": round(m.margin, 3) if m and m.margin is not None else None,
    }


def score(
    decide: Decide, probes: Iterable[tuple[str, Descriptor]], strangers: Iterable[tuple[str, Descriptor]]
) -> Outcome:
    out = Outcome()
    for identity, d in probes:
        out.probes += 1
        decision = decide(d)
        if decision.decision == ACCEPTED and decision.match and decision.match.user == identity:
            out.probes_self += 1
        elif decision.decision == ACCEPTED:
            out.probes_other.append({"expected": identity, **_detail(identity, decision)})
        else:
            out.probes_refused.append(_detail(identity, decision))
    for name, d in strangers:
        out.strangers += 1
        decision = decide(d)
        if decision.decision == ACCEPTED:
            out.strangers_accepted.append(_detail(name, decision))
    return out


def match_ms(
    deciders: list[Decide], descriptors: list[Descriptor], passes: int = MATCH_PASSES
) -> list[float]:
    """Median time of one decision (match + rule) on an already computed descriptor, per decider.

    The deciders take turns on each descriptor, so a shared CPU's load falls on all of them alike.
    """
    usable = [d for d in descriptors if d.encoding is not None] or descriptors
    samples: list[list[float]] = [[] for _ in deciders]
    for _ in range(max(1, passes // max(1, len(usable)))):
        for d in usable:
            for decide, out in zip(deciders, samples, strict=True):
                start = time.perf_counter()
                decide(d)
                out.append((time.perf_counter() - start) * 1000.0)
    return [statistics.median(s) for s in samples]


def run(root: Path, descriptor_passes: int = 3, rule: str | None = None) -> dict[str, Any]:
    face_set = read_set(root)
    load_faces()  # model loading is not a login decision
    enrolled = enrol(face_set)
    probe_desc, stranger_desc = {}, {}
    describe_ms: list[float] = []
    for _ in range(max(1, descriptor_passes)):
        for identity, path in face_set.probes:
            probe_desc[identity] = d = describe(path)
            describe_ms.append(d.ms)
        for path in face_set.strangers:
            stranger_desc[path.name] = d = describe(path)
            describe_ms.append(d.ms)
    decide = login_rule(enrolled.bundle, rule=rule)
    outcome = score(decide, probe_desc.items(), stranger_desc.items())
    all_desc = list(probe_desc.values()) + list(stranger_desc.values())
    # The peer: format 1's rule (each encoding on its own), on the same encodings.
    decision_ms, nearest_ms = match_ms([decide, login_rule(enrolled.bundle, rule=NEAREST)], all_desc)
    return {
        "set": str(root),
        "identities": len(face_set.enrol),
        "enrol_photos": sum(len(v) for v in face_set.enrol.values()),
        "enrolled_encodings": len(enrolled.bundle.encodings),
        "enrol_rejected": enrolled.rejected,
        **outcome.as_dict(),
        "rule": rule or enrolled.bundle.match_rule,
        "threshold": DEFAULT_THRESHOLD,
        "margin": DEFAULT_MARGIN,
        "ms": {
            "match_per_decision": round(decision_ms, 4),
            "match_per_decision_nearest_rule": round(nearest_ms, 4),
            "descriptor_plus_match_per_decision": round(statistics.median(describe_ms) + decision_ms, 1),
            "encode_per_enrolled_photo": round(statistics.median(enrolled.encode_ms), 1),
        },
        "load_average": [round(x, 2) for x in os.getloadavg()],
        "cpus": os.cpu_count(),
    }


def print_report(r: dict[str, Any]) -> None:
    print(f"set {r['set']}: {r['identities']} identities, {r['enrol_photos']} enrolment photos "
          f"({r['enrolled_encodings']} enrolled, {len(r['enrol_rejected'])} rejected), "
          f"{r['probes']} probes, {r['strangers']} strangers")  # fmt: skip
    for rej in r["enrol_rejected"]:
        print(f"  not enrolled: {rej['file']}: {rej['reason']}")
    print(f"rule {r['rule']}, threshold {r['threshold']}, margin {r['margin']}")
    print(f"probes accepted as themselves   {r['probes_accepted_as_themselves']}/{r['probes']}")
    print(f"probes accepted as someone else {r['probes_accepted_as_someone_else']}/{r['probes']}")
    print(f"strangers accepted              {r['strangers_accepted']}/{r['strangers']}")
    for w in r["wrong_accepts"]:
        print(f"  WRONG: {w['photo']} accepted as {w['user']} (d={w['distance']}, margin={w['margin']})")
    for f in r["refused"]:
        nearest = f"nearest {f['user']}, d={f['distance']}, margin={f['margin']}"
        print(f"  refused: {f['photo']}: {f['reason']} ({nearest})")
    ms = r["ms"]
    ratio = ms["match_per_decision"] / ms["match_per_decision_nearest_rule"]
    print(f"per login decision: match {ms['match_per_decision']:.4f} ms ({ratio:.2f}x the nearest rule's "
          f"{ms['match_per_decision_nearest_rule']:.4f} ms on the same encodings), "
          f"descriptor + match {ms['descriptor_plus_match_per_decision']:.1f} ms (medians)")  # fmt: skip
    print(f"per enrolled photo: {ms['encode_per_enrolled_photo']:.1f} ms to encode (median)")
    print(f"load average {r['load_average']} on {r['cpus']} CPUs (shared: times are medians)")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--set", type=Path, required=True, help="folder with enrol/, probes/, strangers/")
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    parser.add_argument("--passes", type=int, default=3, help="descriptor timing passes (median)")
    parser.add_argument(
        "--rule", choices=RULES, help="decide by this match rule instead of the bundle's (nearest: format 1)"
    )
    args = parser.parse_args(argv)
    if not args.set.is_dir():
        parser.error(f"{args.set}: not a folder")
    report = run(args.set, args.passes, args.rule)
    if args.json:
        print(json.dumps(report))
    else:
        print_report(report)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
