"""What each enrolment and matching lever does on a recognition set: the measurements behind the match rule.

Every photo of the set (`bench.recognition`'s layout) is read once both ways: as the sync reads an
enrolment photo (800 px, HOG, dlib's 5-point landmarks; encoded with 1, 10 and, with --jitters,
more jittered samples; and with the 68-point landmarks for the alignment check; its face size,
sharpness and yaw for the quality gate) and as the login reads an image (320 px high, one
descriptor). What is computed is kept in --cache (an .npz, no pickle: biometric data, keep it
private), so the analysis can be re-run without encoding again.

The set alone (one probe per identity) is too small to tell levers apart, so each is scored in
two ways:

- the set as given: probes accepted as themselves / as someone else, strangers accepted;
- rotations: every photo of an identity is the probe once, the identity enrolled from the
  others (genuine trials); every stranger against every such gallery, and every photo of an
  identity against the gallery without that identity (impostor trials, the open-set case that
  matters for a door: a person who is not enrolled but resembles someone who is).

For each lever: accepted genuine trials, accepted impostor trials (as anyone), and the share of
genuine trials accepted at the strictest threshold that still admits no impostor (TAR@0: how
much room the rule leaves). Costs: per enrolled photo (encoding), per decision (match).

    .venv/bin/python -m bench.recognition_levers --set SET --cache /tmp/levers.npz [--jitters 1 10 100]

Measured on the public set (bench/recognition_set.csv, 90 identities; 2 shared cores; enrolment
here without the sync's identity checks; `--jitters 1`): the nearest photo at 0.5 / 0.1 accepts
393/445 genuine rotations and 101/8995 impostors; the mean of a user's photos (centroid, trimmed
mean) 417/445 and 9/8995; each photo or the mean (nearest-or-mean, the previous rule) 417/445
and 97/8995. 68-point alignment 389/445 (12 impostors); quality gates 391-394/445; per-user
thresholds 359/445 (0 impostors); the mean at 0.45 405/445 (6), at 0.55 417/445 (102), with a
0.15 margin 373/445 (1). On the earlier 40 identities, 10 and 100 jitters gave nothing on top of
the mean at 12x and 95x the encoding time (83 ms -> 964 ms -> 7.9 s a photo).
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from bench.recognition import describe, read_set
from facelogin.faces import _reduction, load_faces, models_dir, sharpness, yaw_degrees
from facelogin.imaging import open_photo
from facelogin.login.match import DEFAULT_MARGIN, DEFAULT_THRESHOLD

JITTERS = (1, 10)


# ---------------------------------------------------------------- features


@dataclass
class Photo:
    key: str  # "Identity/file" or "strangers/file"
    identity: str | None  # None: a stranger
    enrolment: dict[str, np.ndarray]  # "j1", "j10", ..., "p68": the sync's encodings (empty: none)
    encode_ms: dict[str, float]
    face_px: float
    sharpness: float
    yaw: float
    login: np.ndarray | None  # the login's descriptor (None: not exactly one face)


def extract(root: Path, jitters: Sequence[int]) -> list[Photo]:
    import dlib

    engine = load_faces()
    folder = models_dir()
    large = dlib.shape_predictor(str(folder / "shape_predictor_68_face_landmarks.dat")) if folder else None
    face_set = read_set(root)
    items: list[tuple[str, str | None, Path]] = []
    for user, photos in face_set.enrol.items():
        items += [(f"{user}/{p.name}", user, p) for p in photos]
    items += [(f"{user}/probe:{p.name}", user, p) for user, p in face_set.probes]
    items += [(f"strangers/{p.name}", None, p) for p in face_set.strangers]
    out = []
    for key, identity, path in items:
        enrolment: dict[str, np.ndarray] = {}
        ms: dict[str, float] = {}
        face_px = sharp = yaw = float("nan")
        image = open_photo(path, 800)
        pixels = np.asarray(image)
        boxes = engine.face_locations(pixels, 0) or engine.face_locations(pixels, 1)
        if identity is not None and len(boxes) == 1:
            top, right, bottom, left = boxes[0]
            rect = dlib.rectangle(left, top, right, bottom)
            shape = engine.predictor(pixels, rect)
            for n in jitters:
                start = time.perf_counter()
                enrolment[f"j{n}"] = np.asarray(engine.encoder.compute_face_descriptor(pixels, shape, n))
                ms[f"j{n}"] = (time.perf_counter() - start) * 1000.0
            if large is not None:
                enrolment["p68"] = np.asarray(
                    engine.encoder.compute_face_descriptor(pixels, large(pixels, rect), 1)
                )
            points = np.array([(p.x, p.y) for p in shape.parts()], dtype=np.float64)
            face_px = (right - left) * _reduction(path, image.size)
            sharp = sharpness(np.asarray(dlib.get_face_chip(pixels, shape, size=150, padding=0.25)))
            yaw = yaw_degrees(points)
        d = describe(path)
        out.append(Photo(key, identity, enrolment, ms, face_px, sharp, yaw, d.encoding))
    return out


def add_jitters(photos: list[Photo], root: Path, jitters: Sequence[int]) -> list[str]:
    """Encode the identity photos with each jitter count in `jitters` that `photos` do not have yet."""
    import dlib

    engine = load_faces()
    missing = [n for n in jitters if not all(f"j{n}" in p.enrolment for p in photos if "j1" in p.enrolment)]
    face_set = read_set(root)
    paths = {f"{u}/{p.name}": p for u, ps in face_set.enrol.items() for p in ps}
    paths |= {f"{u}/probe:{p.name}": p for u, p in face_set.probes}
    for photo in photos:
        if "j1" not in photo.enrolment or not missing:
            continue
        pixels = np.asarray(open_photo(paths[photo.key], 800))
        boxes = engine.face_locations(pixels, 0) or engine.face_locations(pixels, 1)
        top, right, bottom, left = boxes[0]
        shape = engine.predictor(pixels, dlib.rectangle(left, top, right, bottom))
        for n in missing:
            start = time.perf_counter()
            photo.enrolment[f"j{n}"] = np.asarray(engine.encoder.compute_face_descriptor(pixels, shape, n))
            photo.encode_ms[f"j{n}"] = (time.perf_counter() - start) * 1000.0
    return [f"j{n}" for n in missing]


def save(photos: list[Photo], path: Path) -> None:
    arrays: dict[str, np.ndarray] = {}
    meta = []
    for i, p in enumerate(photos):
        for name, enc in p.enrolment.items():
            arrays[f"{i}_{name}"] = enc
        if p.login is not None:
            arrays[f"{i}_login"] = p.login
        meta.append(
            {
                "key": p.key,
                "identity": p.identity,
                "ms": p.encode_ms,
                "face_px": p.face_px,
                "sharpness": p.sharpness,
                "yaw": p.yaw,
                "enrolment": sorted(p.enrolment),
            }
        )
    arrays["meta"] = np.asarray(json.dumps(meta))
    path.parent.mkdir(parents=True, exist_ok=True)
    np.savez(path, allow_pickle=False, **arrays)
    path.chmod(0o600)  # encodings are biometric data


def load(path: Path) -> list[Photo]:
    with np.load(path, allow_pickle=False) as npz:
        meta = json.loads(str(npz["meta"]))
        out = []
        for i, m in enumerate(meta):
            enrolment = {name: np.asarray(npz[f"{i}_{name}"]) for name in m["enrolment"]}
            login = np.asarray(npz[f"{i}_login"]) if f"{i}_login" in npz.files else None
            out.append(
                Photo(
                    m["key"], m["identity"], enrolment, m["ms"], m["face_px"], m["sharpness"], m["yaw"], login
                )
            )
    return out


# ---------------------------------------------------------------- rules

# A rule turns one user's enrolment encodings into what the login compares against (rows), and
# scores a probe per user from the distances to those rows.


@dataclass(frozen=True)
class Rule:
    name: str
    rows: Callable[[np.ndarray], np.ndarray]  # (k,128) -> (m,128)


def _nearest(e: np.ndarray) -> np.ndarray:
    return e


def _centroid(e: np.ndarray) -> np.ndarray:
    return e.mean(axis=0, keepdims=True)


def _trimmed(e: np.ndarray, cut: float = 0.15) -> np.ndarray:
    """Per coordinate, the mean of the values left after cutting `cut` off each end (Frigate's rule)."""
    k = len(e)
    drop = int(np.floor(k * cut))
    if k - 2 * drop < 1:
        return e.mean(axis=0, keepdims=True)
    s = np.sort(e, axis=0)
    return s[drop : k - drop].mean(axis=0, keepdims=True)


def _medoid_drop(e: np.ndarray) -> np.ndarray:
    """Nearest neighbour after dropping the photo farthest from the user's centroid (with 4+ photos)."""
    if len(e) < 4:
        return e
    d = np.linalg.norm(e - e.mean(axis=0), axis=1)
    return np.delete(e, int(np.argmax(d)), axis=0)


def _nn_and_centroid(e: np.ndarray) -> np.ndarray:
    return np.vstack([e, e.mean(axis=0, keepdims=True)])


RULES = {
    "nearest": Rule("nearest", _nearest),
    "centroid": Rule("centroid", _centroid),
    "trimmed15": Rule("trimmed15", _trimmed),
    "nearest-drop-outlier": Rule("nearest-drop-outlier", _medoid_drop),
    "nearest-or-mean": Rule("nearest-or-mean", _nn_and_centroid),
}


@dataclass
class Gallery:
    users: list[str]
    rows: list[np.ndarray]  # per user, (m,128)
    thresholds: np.ndarray  # per user


def build_gallery(
    enrolled: dict[str, np.ndarray], rule: Rule, threshold: float, per_user: str | None
) -> Gallery:
    users = sorted(enrolled)
    rows = [rule.rows(enrolled[u]) for u in users]
    t = np.full(len(users), threshold)
    if per_user:
        t = per_user_thresholds(users, enrolled, threshold, per_user)
    return Gallery(users, rows, t)


def per_user_thresholds(
    users: list[str], enrolled: dict[str, np.ndarray], base: float, how: str
) -> np.ndarray:
    """A threshold per user from the spread of their own photos, bounded by the closest other user.

    spread: the largest leave-one-out distance among the user's own photos (how far a genuine new
    photo may land); the threshold is base + (spread - median spread) / 2, never above
    `ceiling`, and never above (closest other user's photo - margin) / 2 + ... see `how`.
    """
    spreads = []
    for u in users:
        e = enrolled[u]
        if len(e) < 2:
            spreads.append(np.nan)
            continue
        d = np.linalg.norm(e[:, None] - e[None], axis=2)
        np.fill_diagonal(d, np.inf)
        spreads.append(float(d.min(axis=1).max()))
    s = np.asarray(spreads)
    med = float(np.nanmedian(s)) if np.isfinite(s).any() else 0.0
    ceiling = float(how.split(":")[1]) if ":" in how else base + 0.05
    out = np.clip(base + (np.nan_to_num(s, nan=med) - med) / 2.0, base - 0.05, ceiling)
    # Bounded by the closest other user: half the distance between the two users' nearest photos.
    for i, u in enumerate(users):
        others = [
            np.linalg.norm(enrolled[u][:, None] - enrolled[v][None], axis=2).min() for v in users if v != u
        ]
        if others:
            out[i] = min(out[i], min(others) - DEFAULT_MARGIN)
    return out


def decide(g: Gallery, x: np.ndarray, margin: float) -> tuple[str | None, float]:
    """(accepted user or None, best distance)."""
    per_user = np.array([np.linalg.norm(r - x, axis=1).min() for r in g.rows])
    order = np.argsort(per_user)
    best = int(order[0])
    d = float(per_user[best])
    if not d < g.thresholds[best]:
        return None, d
    if len(order) > 1 and per_user[order[1]] - d < margin:
        return None, d
    return g.users[best], d


# ---------------------------------------------------------------- scoring


@dataclass
class Config:
    name: str
    encoding: str = "j1"
    rule: str = "nearest"
    threshold: float = DEFAULT_THRESHOLD
    margin: float = DEFAULT_MARGIN
    gate: str | None = None  # "size:72,sharp:S,yaw:Y"
    per_user: str | None = None


def passes_gate(p: Photo, gate: str | None) -> bool:
    if not gate:
        return True
    limits = dict(part.split(":") for part in gate.split(","))
    if "size" in limits and p.face_px < float(limits["size"]):
        return False
    if "sharp" in limits and p.sharpness < float(limits["sharp"]):
        return False
    return not ("yaw" in limits and p.yaw > float(limits["yaw"]))


def enrolment_of(photos: list[Photo], cfg: Config, skip: set[str] = frozenset()) -> dict[str, np.ndarray]:  # type: ignore[assignment]
    by: dict[str, list[np.ndarray]] = {}
    for p in photos:
        if p.identity is None or ":" in p.key or p.key in skip or cfg.encoding not in p.enrolment:
            continue
        if passes_gate(p, cfg.gate):
            by.setdefault(p.identity, []).append(p.enrolment[cfg.encoding])
    # A gate never takes a user's last photo away: the weakest is better than no enrolment.
    for p in photos:
        if p.identity and ":" not in p.key and p.identity not in by and cfg.encoding in p.enrolment:
            by.setdefault(p.identity, []).append(p.enrolment[cfg.encoding])
    return {u: np.vstack(v) for u, v in by.items()}


def score_set(photos: list[Photo], cfg: Config) -> dict[str, Any]:
    g = build_gallery(enrolment_of(photos, cfg), RULES[cfg.rule], cfg.threshold, cfg.per_user)
    self_ok = other = stranger = 0
    probes = [p for p in photos if p.identity and ":" in p.key]
    strangers = [p for p in photos if p.identity is None]
    for p in probes:
        user, _ = decide(g, p.login, cfg.margin) if p.login is not None else (None, 0.0)
        self_ok += user == p.identity
        other += user is not None and user != p.identity
    for p in strangers:
        user, _ = decide(g, p.login, cfg.margin) if p.login is not None else (None, 0.0)
        stranger += user is not None
    return {
        "probes": len(probes),
        "self": self_ok,
        "other": other,
        "strangers": len(strangers),
        "stranger_acc": stranger,
    }


def score_rotations(photos: list[Photo], cfg: Config) -> dict[str, Any]:
    """Each identity photo as the probe once, the rest enrolled; impostors: strangers, left-out identities."""
    by_user: dict[str, list[Photo]] = {}
    for p in photos:
        if p.identity:
            by_user.setdefault(p.identity, []).append(p)
    strangers = [p for p in photos if p.identity is None and p.login is not None]
    base: dict[str, list[Photo]] = {}
    for p in photos:
        if p.identity and cfg.encoding in p.enrolment:
            base.setdefault(p.identity, []).append(p)
    genuine_ok = genuine = wrong = 0
    gen_d: list[float] = []
    imp_d: list[float] = []
    imp_acc = imps = 0
    rule = RULES[cfg.rule]

    def enrol_from(members: dict[str, list[Photo]]) -> dict[str, np.ndarray]:
        out = {}
        for u, ps in members.items():
            kept = [q for q in ps if passes_gate(q, cfg.gate)] or ps
            if kept:
                out[u] = np.vstack([q.enrolment[cfg.encoding] for q in kept])
        return out

    for user, ps in by_user.items():
        for held in ps:
            if held.login is None:
                continue
            members = {u: [q for q in v if q is not held] for u, v in base.items()}
            members = {u: v for u, v in members.items() if v}
            g = build_gallery(enrol_from(members), rule, cfg.threshold, cfg.per_user)
            got, _ = decide(g, held.login, cfg.margin)
            genuine += 1
            genuine_ok += got == user
            wrong += got is not None and got != user
            i = g.users.index(user) if user in g.users else None
            if i is not None:
                gen_d.append(float(np.linalg.norm(g.rows[i] - held.login, axis=1).min() - g.thresholds[i]))
    # Impostors: each identity left out of the gallery entirely, its photos and the strangers tried.
    for user, ps in by_user.items():
        members = {u: v for u, v in base.items() if u != user}
        g = build_gallery(enrol_from(members), rule, cfg.threshold, cfg.per_user)
        for q in [p for p in ps if p.login is not None] + strangers:
            assert q.login is not None
            got, _ = decide(g, q.login, cfg.margin)
            imps += 1
            imp_acc += got is not None
            per = np.array([np.linalg.norm(r - q.login, axis=1).min() for r in g.rows]) - g.thresholds
            imp_d.append(float(per.min()))
    gen = np.asarray(gen_d)
    imp = np.asarray(imp_d)
    # TAR at zero false accepts: shift every threshold by the same amount, as far as no impostor passes.
    shift = float(imp.min()) if len(imp) else 0.0
    tar0 = float(np.mean(gen < shift)) if len(gen) else float("nan")
    return {
        "genuine": genuine,
        "genuine_ok": genuine_ok,
        "wrong": wrong,
        "impostor_trials": imps,
        "impostor_acc": imp_acc,
        "tar_at_zero_far": tar0,
        "shift": shift,
    }


def default_configs(jitters: Sequence[int]) -> list[Config]:
    cfgs = [Config("today: 1 jitter, nearest, 0.5/0.1")]
    for n in jitters[1:]:
        cfgs.append(Config(f"{n} jitters", encoding=f"j{n}"))
    cfgs.append(Config("68-point alignment", encoding="p68"))
    for rule in ("centroid", "trimmed15", "nearest-drop-outlier", "nearest-or-mean"):
        cfgs.append(Config(f"rule {rule}", rule=rule))
    cfgs += [
        Config("gate: face >= 100 px", gate="size:100"),
        Config("gate: sharpness >= 30", gate="sharp:30"),
        Config("gate: yaw <= 30", gate="yaw:30"),
        Config("gate: yaw <= 25, sharp >= 30", gate="yaw:25,sharp:30"),
        Config("per-user thresholds (<=0.55)", per_user="spread:0.55"),
        Config("threshold 0.55", threshold=0.55),
        Config("threshold 0.55, margin 0.08", threshold=0.55, margin=0.08),
    ]
    for n in jitters[1:]:
        cfgs.append(Config(f"{n} jitters + nearest-or-mean", encoding=f"j{n}", rule="nearest-or-mean"))
    cfgs.append(Config("nearest-or-mean, threshold 0.52", rule="nearest-or-mean", threshold=0.52))
    cfgs += [
        Config("centroid, threshold 0.45", rule="centroid", threshold=0.45),
        Config("centroid, threshold 0.55", rule="centroid", threshold=0.55),
        Config("centroid, margin 0.15", rule="centroid", margin=0.15),
        Config("centroid, per-user thresholds (<=0.55)", rule="centroid", per_user="spread:0.55"),
    ]
    return cfgs


def match_cost_ms(photos: list[Photo], cfg: Config) -> float:
    """Median ms of one decision with facelogin's vectorised Gallery over this rule's rows."""
    from facelogin.login.match import Gallery as LoginGallery
    from facelogin.login.match import best_match, decide_frame

    enrolled = enrolment_of(photos, cfg)
    users = sorted(enrolled)
    rows = [RULES[cfg.rule].rows(enrolled[u]) for u in users]
    labels = np.concatenate([[i] * len(r) for i, r in enumerate(rows)])
    g = LoginGallery.build(np.vstack(rows), labels, users)
    probes = [p.login for p in photos if p.login is not None]
    samples = []
    for _ in range(5):
        for x in probes:
            start = time.perf_counter()
            decide_frame(1, best_match(g, x), cfg.threshold, cfg.margin)
            samples.append((time.perf_counter() - start) * 1000.0)
    return statistics.median(samples)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--set", type=Path, required=True)
    parser.add_argument("--cache", type=Path, help="keep the computed encodings here (.npz)")
    parser.add_argument("--jitters", type=int, nargs="*", default=list(JITTERS))
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    jitters = sorted(set([1, *args.jitters]))
    if args.cache and args.cache.exists():
        photos = load(args.cache)
        if add_jitters(photos, args.set, jitters):
            save(photos, args.cache)
    else:
        photos = extract(args.set, jitters)
        if args.cache:
            save(photos, args.cache)
    have = {k for p in photos for k in p.enrolment}
    jitters = [n for n in jitters if f"j{n}" in have]
    rows = []
    for cfg in default_configs(jitters):
        if cfg.encoding not in have:
            continue
        row = {"config": cfg.name, **score_set(photos, cfg), **score_rotations(photos, cfg)}
        row["match_ms"] = match_cost_ms(photos, cfg)
        row["encode_ms"] = (
            statistics.median(p.encode_ms.get(cfg.encoding, float("nan")) for p in photos if p.encode_ms)
            if cfg.encoding.startswith("j")
            else float("nan")
        )
        rows.append(row)
    if args.json:
        print(json.dumps(rows))
        return 0
    head = (
        "lever",
        "set probes",
        "other",
        "strangers",
        "rotations",
        "wrong",
        "impostors",
        "TAR@0",
        "enc ms",
        "match ms",
    )
    print("{:42s} {:>10s} {:>5s} {:>9s} | {:>9s} {:>5s} {:>9s} {:>6s} | {:>7s} {:>8s}".format(*head))
    for r in rows:
        cells = (
            f"{r['self']:>4d}/{r['probes']:<5d} {r['other']:>5d} "
            f"{r['stranger_acc']:>4d}/{r['strangers']:<4d}",
            f"{r['genuine_ok']:>4d}/{r['genuine']:<4d} {r['wrong']:>5d} "
            f"{r['impostor_acc']:>4d}/{r['impostor_trials']:<4d}",
            f"{r['tar_at_zero_far']:>6.1%}",
            f"{r['encode_ms']:>7.0f} {r['match_ms']:>8.4f}",
        )
        print(f"{r['config']:42s} {cells[0]} | {cells[1]} {cells[2]} | {cells[3]}")
    gated = {
        g: sum(not passes_gate(p, g) for p in photos if p.identity and ":" not in p.key)
        for g in ("size:100", "sharp:30", "yaw:30")
    }
    print("enrolment photos a gate leaves out:", gated)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
