"""What each stage of a sync returns, and what the next stage is given (pure).

Every stage returns a value of its own (`Trained`, the identity check's `IdentityCheck`,
`Thumbnailed`, `Uploaded`); `Jobs` works out each stage's work from the plan and the values of
the stages before it; `outcome.collect_outcome` merges the values once, when the stages are done
(or when a run stops half-way, with the values it has). No stage changes another's value.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field

from facelogin.faces import ENCODED, REJECTED, FaceResult
from facelogin.sync.discover import Photo
from facelogin.sync.identity import Candidate, IdentityCheck
from facelogin.sync.plan import Plan, expected_thumbs

Verdict = tuple[str, "str | None"]  # (status, why rejected; or what makes an encoded photo weak)
Problems = Mapping[str, "str | None"]  # a thumbnail task's result: photo path -> None, or why not decoded
ThumbnailTask = tuple[Sequence[str], "Problems | None", "BaseException | None"]  # users, result, error


@dataclass(frozen=True)
class Trained:
    """The training stage: each content's verdict, the encodings it computed, and the thumbnails the
    encoders staged (content hash -> None, or why they could not write them)."""

    verdicts: Mapping[str, Verdict] = field(default_factory=dict)
    encodings: Mapping[str, list[float]] = field(default_factory=dict)
    thumbnails: Mapping[str, str | None] = field(default_factory=dict)


def collect_training(
    cached: Iterable[str], results: Mapping[str, FaceResult], staged: Mapping[str, str | None] | None = None
) -> Trained:
    """The training stage's value: stored encodings (`cached`) count as encoded, then each new result."""
    verdicts: dict[str, Verdict] = dict.fromkeys(cached, (ENCODED, None))
    for sha, result in results.items():
        verdicts[sha] = (result.status, result.reason if result.status != ENCODED else result.weak)
    encodings = {sha: r.encoding for sha, r in results.items() if r.encoding}
    return Trained(verdicts, encodings, dict(staged or {}))


@dataclass(frozen=True)
class Thumbnailed:
    """The thumbnail stage: per user the photos staged; contents rejected because a photo of theirs
    could not be decoded (content hash -> why); errors (retried next run); staged keys to drop."""

    staged: Mapping[str, list[Photo]] = field(default_factory=dict)
    undecodable: Mapping[str, str] = field(default_factory=dict)
    errors: list[dict[str, str]] = field(default_factory=list)
    discard: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class Uploaded:
    """The upload stage: each photo whose thumbnails are all in the store (ref -> keys), and errors."""

    thumbs: Mapping[str, Mapping[str, str]] = field(default_factory=dict)
    errors: list[dict[str, str]] = field(default_factory=list)


@dataclass(frozen=True)
class Jobs:
    """What each stage is given: worked out from the plan and what the stages before it returned."""

    plan: Plan
    thumbs: Mapping[str, dict[str, str]]  # photo ref -> size -> object key, for every photo to process

    @classmethod
    def for_plan(cls, plan: Plan, sizes: list[int], prefix: str) -> Jobs:
        return cls(plan, {p.ref: expected_thumbs(p, sizes, prefix) for p in plan.todo})

    def shas_to_encode(self) -> list[str]:
        return sorted({p.sha256 for p in self.plan.todo})

    def to_encode(self, cached: Iterable[str]) -> list[Photo]:
        """Each distinct content once, except those whose encoding is already stored (`cached`)."""
        known = set(cached)
        return list({p.sha256: p for p in self.plan.todo if p.sha256 not in known}.values())

    def thumbnails_along(self, photos: list[Photo]) -> dict[str, list[dict[str, str]]]:
        """For the encoders to stage: per photo to encode (`to_encode`), the thumbnail keys of every
        photo with its content (a copy under another name is staged from the same decode)."""
        paths = {p.sha256: p.path for p in photos}
        along: dict[str, list[dict[str, str]]] = {}
        for photo in self.plan.todo:
            if photo.sha256 in paths:
                along.setdefault(paths[photo.sha256], []).append(self.thumbs[photo.ref])
        return along

    def thumbnail_jobs(self, along: Iterable[str] = ()) -> dict[str, dict[str, dict[str, str]]]:
        """Per user, each photo's path -> its thumbnail keys per size, but for the photos whose content
        the encoders stage (`along`: the paths they are given, from `thumbnails_along`)."""
        given = set(along)
        left_out = {p.sha256 for p in self.plan.todo if p.path in given}
        jobs: dict[str, dict[str, dict[str, str]]] = {}
        for photo in self.plan.todo:
            if photo.sha256 not in left_out:
                jobs.setdefault(photo.username, {})[photo.path] = self.thumbs[photo.ref]
        return jobs

    def identity_shas(self, cached: Iterable[str], trained: Trained) -> list[str]:
        """Content hashes whose stored encodings the identity checks need beyond `cached` and new ones."""
        have = set(cached) | set(trained.encodings)
        accepted = [p.sha256 for p in self.plan.unchanged]
        accepted += [
            r["sha256"] for recs in self.plan.held.values() for r in recs if r.get("status") == ENCODED
        ]
        return sorted(set(accepted) - have)

    def identity_candidates(self, stored: Mapping[str, list[float]], trained: Trained) -> list[Candidate]:
        """Every photo with a face to check: those accepted before (established), this run's encoded ones."""
        encodings = {**stored, **trained.encodings}
        candidates = [
            Candidate(p.ref, p.username, p.sha256, encodings[p.sha256], established=True)
            for p in self.plan.unchanged
            if p.sha256 in encodings
        ]
        candidates += [
            Candidate(f"{user}/{r['filename']}", user, r["sha256"], encodings[r["sha256"]], established=True)
            for user, recs in self.plan.held.items()
            for r in recs
            if r.get("status") == ENCODED and r.get("sha256") in encodings
        ]
        candidates += [
            Candidate(p.ref, p.username, p.sha256, encodings[p.sha256])
            for p in self.plan.todo
            if trained.verdicts.get(p.sha256, ("",))[0] == ENCODED and p.sha256 in encodings
        ]
        return candidates

    def thumbnailed(
        self, tasks: Iterable[ThumbnailTask], trained: Trained, identity: IdentityCheck | None
    ) -> Thumbnailed:
        """The thumbnail stage's value, from its tasks' results (users, result, error) in the order they
        were started, and the thumbnails the encoders staged (`trained.thumbnails`, per content).

        A photo rejected by the encoders or the identity checks has its staged thumbnails dropped. A
        photo that cannot be decoded rejects its content; a task that failed outright, or an encoder
        that could not write a photo's thumbnails, is an error: the photo is tried again next run.
        """
        left_out = identity.rejected if identity is not None else {}
        verdicts = dict(trained.verdicts)  # a content found undecodable is rejected for the photos after it
        todo: dict[str, list[Photo]] = {}
        for photo in self.plan.todo:
            todo.setdefault(photo.username, []).append(photo)
        order = [(user, problems, error) for users, problems, error in tasks for user in users]
        order += [(user, {}, None) for user in sorted(set(todo) - {user for user, _, _ in order})]
        staged: dict[str, list[Photo]] = {}
        undecodable: dict[str, str] = {}
        errors: list[dict[str, str]] = []
        discard: list[str] = []
        for user, problems, error in order:
            for photo in todo.get(user, []):
                if verdicts.get(photo.sha256, ("",))[0] != ENCODED or photo.ref in left_out:
                    discard += self.thumbs[photo.ref].values()
                    continue
                if photo.sha256 in trained.thumbnails:
                    failure = trained.thumbnails[photo.sha256]
                    if failure is None:
                        staged.setdefault(user, []).append(photo)
                    else:
                        errors.append({"file": photo.path, "error": failure})
                        discard += self.thumbs[photo.ref].values()
                    continue
                reason = (problems or {}).get(photo.path) if error is None else f"thumbnail failed: {error}"
                if reason is None:
                    staged.setdefault(user, []).append(photo)
                elif error is None:
                    verdicts[photo.sha256] = (REJECTED, reason)
                    undecodable[photo.sha256] = reason
                else:
                    errors.append({"file": photo.path, "error": reason})
        return Thumbnailed(staged, undecodable, errors, discard)

    def upload_jobs(self, thumbnailed: Thumbnailed) -> dict[str, list[str]]:
        """Per user, the staged object keys to upload."""
        return {
            user: sorted(k for p in photos for k in self.thumbs[p.ref].values())
            for user, photos in thumbnailed.staged.items()
        }

    def uploaded(self, thumbnailed: Thumbnailed, failed: Mapping[str, BaseException | str]) -> Uploaded:
        """The upload stage's value; `failed` maps each key still not in the store to its last error.

        A photo counts as uploaded only when every one of its thumbnails is; the others are errors,
        recorded without thumbnails so that the next run tries them again.
        """
        thumbs: dict[str, Mapping[str, str]] = {}
        errors: list[dict[str, str]] = []
        for photos in thumbnailed.staged.values():
            for photo in photos:
                problems = [failed[k] for k in self.thumbs[photo.ref].values() if k in failed]
                if problems:
                    errors.append({"file": photo.path, "error": f"upload failed: {problems[0]}"})
                else:
                    thumbs[photo.ref] = self.thumbs[photo.ref]
        return Uploaded(thumbs, errors)
