"""Identity checks on a whole enrolment set: synthetic encodings for the rules, real ones for the photos."""

from __future__ import annotations

import hashlib
import json
import random
import re
from pathlib import Path

import numpy as np
import pytest

from facelogin.faces import encode_face
from facelogin.login.match import DEFAULT_MARGIN, DEFAULT_THRESHOLD
from facelogin.sync.identity import (
    DIFFERENT_PERSON,
    SAME_PERSON,
    Candidate,
    IdentityCheck,
    check_identities,
    enrolled_candidates,
)

# Synthetic faces: person k sits on axis k, a photo of them adds a small offset on its own axis.
# Two photos of one person are 0.21 apart, photos of two people 0.94.
PERSONS = {"Alice": 0, "Bob": 1, "Carol": 2, "Dave": 3, "Erin": 4}


def axis(k: int, length: float = 1.0) -> np.ndarray:
    vector = np.zeros(128)
    vector[k] = length
    return vector


def face(person: str, photo: int = 0) -> np.ndarray:
    return axis(PERSONS[person], 0.65) + axis(64 + photo, 0.15)


def shifted(encoding: np.ndarray, distance: float, along: int = 120) -> np.ndarray:
    """`encoding` moved `distance` along an axis no other face uses: exactly that far from it."""
    return encoding + axis(along, distance)


def cand(ref: str, encoding: np.ndarray, established: bool = False, sha: str | None = None) -> Candidate:
    return Candidate(ref, ref.split("/")[0], sha or f"sha-{ref}", encoding.tolist(), established)


def clean_set(established: bool = True) -> list[Candidate]:
    return [
        cand("Alice/a1.jpg", face("Alice", 1), established),
        cand("Alice/a2.jpg", face("Alice", 2), established),
        cand("Bob/b1.jpg", face("Bob", 3), established),
        cand("Bob/b2.jpg", face("Bob", 4), established),
        cand("Carol/c1.jpg", face("Carol", 5), established),
    ]


def test_thresholds_are_on_the_login_scale() -> None:
    assert SAME_PERSON == DEFAULT_THRESHOLD
    assert pytest.approx(DEFAULT_THRESHOLD + DEFAULT_MARGIN) == DIFFERENT_PERSON


@pytest.mark.parametrize("established", [True, False])
def test_a_clean_set_passes(established: bool) -> None:
    assert check_identities(clean_set(established)) == IdentityCheck({}, [])


def test_nothing_to_check() -> None:
    assert check_identities([]).as_dict() == {"rejected": {}, "conflicts": [], "involves": {}}


@pytest.mark.parametrize("established", [True, False])
def test_a_photo_filed_under_the_wrong_name_is_rejected(established: bool) -> None:
    photos = [*clean_set(), cand("Alice/bob.jpg", face("Bob", 9), established)]

    result = check_identities(photos)

    # Old mistakes are not exempt: an established photo of Bob is still not Alice.
    assert result.rejected == {"Alice/bob.jpg": "looks like Bob (d=0.21), not Alice"}
    assert result.conflicts == []


def test_a_photo_of_a_one_photo_user_filed_under_another_name() -> None:
    """Carol has one photo: her own is not suspected just because a copy of her face sits in Bob's folder."""
    photos = [*clean_set(), cand("Bob/carol.jpg", face("Carol", 9))]
    assert check_identities(photos).rejected == {"Bob/carol.jpg": "looks like Carol (d=0.21), not Bob"}


def test_a_misfiled_photo_is_not_evidence_against_another() -> None:
    """Dave is nobody's user: his photos in Alice's and Bob's folders are strangers, not each other's."""
    photos = [
        *clean_set(),
        cand("Alice/dave1.jpg", face("Dave", 8)),
        cand("Bob/dave2.jpg", face("Dave", 9)),
    ]
    result = check_identities(photos)
    assert result.rejected == {
        "Alice/dave1.jpg": "a different person from Alice's other photos (d=0.94)",
        "Bob/dave2.jpg": "a different person from Bob's other photos (d=0.94)",
    }


CANNOT_TELL = "cannot tell which photo shows Erin"


@pytest.mark.parametrize(
    ("photos", "rejected"),
    [
        # The majority is the user.
        (
            [
                ("Erin/e1.jpg", "Erin", 1, False),
                ("Erin/e2.jpg", "Erin", 2, False),
                ("Erin/x.jpg", "Dave", 3, False),
            ],
            {"Erin/x.jpg": "a different person from Erin's other photos (d=0.94)"},
        ),
        # An established photo is the user, whichever way the names sort.
        (
            [("Erin/e1.jpg", "Erin", 1, True), ("Erin/x.jpg", "Dave", 3, False)],
            {"Erin/x.jpg": "a different person from Erin's other photos (d=0.94)"},
        ),
        (
            [("Erin/a.jpg", "Dave", 1, False), ("Erin/e1.jpg", "Erin", 3, True)],
            {"Erin/a.jpg": "a different person from Erin's other photos (d=0.94)"},
        ),
        # ... and it outweighs a majority of new photos.
        (
            [
                ("Erin/e1.jpg", "Erin", 1, True),
                ("Erin/x1.jpg", "Dave", 2, False),
                ("Erin/x2.jpg", "Dave", 3, False),
            ],
            {
                "Erin/x1.jpg": "a different person from Erin's other photos (d=0.94)",
                "Erin/x2.jpg": "a different person from Erin's other photos (d=0.94)",
            },
        ),
        # Two new photos of two people: nothing says which one is Erin, so neither is kept.
        (
            [("Erin/e1.jpg", "Erin", 1, False), ("Erin/x.jpg", "Dave", 2, False)],
            {
                "Erin/e1.jpg": f"a different person from Erin/x.jpg (d=0.94): {CANNOT_TELL}",
                "Erin/x.jpg": f"a different person from Erin/e1.jpg (d=0.94): {CANNOT_TELL}",
            },
        ),
    ],
)
def test_a_user_whose_photos_show_two_people(
    photos: list[tuple[str, str, int, bool]], rejected: dict[str, str]
) -> None:
    candidates = [cand(ref, face(person, n), est) for ref, person, n, est in photos]
    assert check_identities(candidates).rejected == rejected


def test_a_copied_file_does_not_make_a_majority() -> None:
    erin = face("Erin", 1)
    photos = [
        cand("Erin/e1.jpg", erin, sha="same"),
        cand("Erin/e1-copy.jpg", erin, sha="same"),
        cand("Erin/x.jpg", face("Dave", 2)),
    ]
    assert set(check_identities(photos).rejected) == {"Erin/e1.jpg", "Erin/e1-copy.jpg", "Erin/x.jpg"}


def test_between_the_thresholds_nothing_is_rejected() -> None:
    """0.55 apart: too far to call one person across users, too close to call two within one."""
    alice = face("Alice", 1)
    photos = [
        cand("Alice/a1.jpg", alice),
        cand("Alice/a2.jpg", shifted(alice, 0.55, along=120)),
        cand("Bob/b1.jpg", shifted(alice, 0.55, along=121)),
    ]

    result = check_identities(photos)

    assert result.rejected == {}
    # Told, though: a person may want to look at two users this alike.
    assert result.conflicts == [
        {"kind": "lookalike", "users": ["Alice", "Bob"], "distance": 0.55, "kept": None, "rejected": []}
    ]


def test_just_over_the_split_threshold_is_two_people() -> None:
    alice = face("Alice", 1)
    photos = [
        cand("Alice/a1.jpg", alice, True),
        cand("Alice/a2.jpg", shifted(alice, DIFFERENT_PERSON + 0.01)),
    ]
    assert check_identities(photos).rejected == {
        "Alice/a2.jpg": "a different person from Alice's other photos (d=0.61)"
    }


@pytest.mark.parametrize(
    ("alice_est", "bob_est", "bob_photos", "kept", "rejected"),
    [
        (True, False, 1, "Alice", ["Bob/b0.jpg"]),
        (False, True, 1, "Bob", ["Alice/a1.jpg", "Alice/a2.jpg"]),
        # Neither accepted before: the user with more photos keeps them ...
        (False, False, 3, "Bob", ["Alice/a1.jpg", "Alice/a2.jpg"]),
        # ... and with as many, the first name.
        (False, False, 2, "Alice", ["Bob/b0.jpg", "Bob/b1.jpg"]),
    ],
)
def test_one_person_under_two_usernames(
    alice_est: bool, bob_est: bool, bob_photos: int, kept: str, rejected: list[str]
) -> None:
    photos = [
        cand("Alice/a1.jpg", face("Alice", 1), alice_est),
        cand("Alice/a2.jpg", face("Alice", 2), alice_est),
    ]
    photos += [cand(f"Bob/b{n}.jpg", face("Alice", 10 + n), bob_est) for n in range(bob_photos)]

    result = check_identities(photos)

    other = "Bob" if kept == "Alice" else "Alice"
    assert result.rejected == dict.fromkeys(rejected, f"same person as {kept} (d=0.21)")
    assert result.conflicts == [
        {
            "kind": "same person",
            "users": ["Alice", "Bob"],
            "distance": 0.21,
            "kept": kept,
            "rejected": rejected,
        }
    ]
    assert other not in {c.username for c in photos if c.ref not in result.rejected}


def test_two_established_users_keep_their_photos_and_the_conflict_is_reported() -> None:
    photos = [
        cand("Alice/a1.jpg", face("Alice", 1), True),
        cand("Bob/b1.jpg", face("Alice", 2), True),
        cand("Bob/b2.jpg", face("Alice", 3)),  # new: it is what now ties Bob to Alice, too
    ]

    result = check_identities(photos)

    assert result.rejected == {"Bob/b2.jpg": "same person as Alice (d=0.21)"}
    assert result.conflicts == [
        {
            "kind": "same person",
            "users": ["Alice", "Bob"],
            "distance": 0.21,
            "kept": None,
            "rejected": ["Bob/b2.jpg"],
        }
    ]


def test_two_people_whose_closest_photos_nearly_match_are_both_enrolled_as_lookalikes() -> None:
    """One close pair of photos is not one person: among 90 people of LFW (bench/recognition_set.csv),
    8 pairs of different people have a pair of photos closer than 0.5 (Hu Jintao and Kim Dae-jung,
    0.48), and turning one of them away helps no one. Their typical (median) pair decides."""
    alice = axis(0, 0.65)
    photos = [
        cand("Alice/a1.jpg", alice + axis(64, 0.1)),
        cand("Alice/a2.jpg", alice - axis(64, 0.1)),
        cand("Bob/b1.jpg", alice + axis(1, 0.45)),  # 0.46 from each of Alice's photos
        cand("Bob/b2.jpg", alice + axis(1, 0.55) + axis(66, 0.1)),  # 0.57
        cand("Bob/b3.jpg", alice + axis(1, 0.55) - axis(66, 0.1)),
    ]

    result = check_identities(photos)

    assert result.rejected == {}
    assert result.conflicts == [
        {"kind": "lookalike", "users": ["Alice", "Bob"], "distance": 0.46, "kept": None, "rejected": []}
    ]

    # The same closest pair with Bob's other photos as near as it: one person, one username kept.
    photos[3:] = [cand("Bob/b2.jpg", alice + axis(1, 0.45) + axis(66, 0.05))]
    assert set(check_identities(photos).rejected) == {"Bob/b1.jpg", "Bob/b2.jpg"}


def test_one_person_under_three_usernames() -> None:
    photos = [
        cand("Alice/a1.jpg", face("Alice", 1), True),
        cand("Bob/b1.jpg", face("Alice", 2)),
        cand("Carol/c1.jpg", face("Alice", 3)),
    ]
    result = check_identities(photos)
    assert result.rejected == {
        "Bob/b1.jpg": "same person as Alice (d=0.21)",
        "Carol/c1.jpg": "same person as Alice (d=0.21)",
    }
    assert [(c["users"], c["kept"]) for c in result.conflicts] == [
        (["Alice", "Bob"], "Alice"),
        (["Alice", "Carol"], "Alice"),
    ]


@pytest.mark.parametrize(
    ("alice_est", "bob_est", "kept", "rejected"),
    [
        (False, False, "Alice/x.jpg", "Bob/y.jpg"),
        (False, True, "Bob/y.jpg", "Alice/x.jpg"),
        (True, False, "Alice/x.jpg", "Bob/y.jpg"),
        (True, True, "Alice/x.jpg", "Bob/y.jpg"),
    ],
)
def test_the_same_file_in_two_folders(alice_est: bool, bob_est: bool, kept: str, rejected: str) -> None:
    photos = [
        cand("Alice/a1.jpg", face("Alice", 1), alice_est),
        cand("Alice/x.jpg", face("Carol", 9), alice_est, sha="c0ffee"),
        cand("Bob/b1.jpg", face("Bob", 1), bob_est),
        cand("Bob/y.jpg", face("Carol", 9), bob_est, sha="c0ffee"),
    ]

    result = check_identities(photos)

    # The copy is rejected for what it is; the other copy is then judged like any photo (here a stranger).
    assert result.rejected[rejected] == f"same file as {kept}"
    assert result.conflicts[0] == {
        "kind": "same file",
        "users": ["Alice", "Bob"],
        "distance": 0.0,
        "kept": kept.split("/")[0],
        "rejected": [rejected],
    }


def test_the_order_of_the_candidates_does_not_matter() -> None:
    photos = [
        *clean_set(),
        cand("Alice/bob.jpg", face("Bob", 9)),
        cand("Erin/e1.jpg", face("Erin", 1)),
        cand("Erin/x.jpg", face("Dave", 2)),
        cand("Frank/f1.jpg", face("Carol", 7)),
        cand("Gina/g1.jpg", face("Carol", 5), sha="sha-Carol/c1.jpg"),
    ]
    expected = check_identities(photos)
    assert len(expected.rejected) == 5
    for seed in range(5):
        shuffled = photos[:]
        random.Random(seed).shuffle(shuffled)
        assert check_identities(shuffled) == expected


def test_each_rejection_says_which_users_it_involves() -> None:
    photos = [
        *clean_set(),
        cand("Alice/bob.jpg", face("Bob", 9)),  # misfiled
        cand("Bob/x.jpg", face("Dave", 8)),  # a stranger in Bob's folder
        cand("Frank/f1.jpg", face("Carol", 7)),  # Carol under a second name
        cand("Gina/g1.jpg", face("Erin", 5), sha="sha-Bob/b1.jpg"),  # a copy of Bob's file
    ]
    assert check_identities(photos).involves == {
        "Alice/bob.jpg": ["Alice", "Bob"],
        "Bob/x.jpg": ["Bob"],
        "Frank/f1.jpg": ["Frank", "Carol"],
        "Gina/g1.jpg": ["Gina", "Bob"],
    }


def test_a_bundle_as_candidates() -> None:
    encodings = np.stack([face("Alice", 1), face("Bob", 1), face("Alice", 2)])
    candidates = enrolled_candidates(encodings, np.array([0, 1, 0]), ["Alice", "Bob"])
    assert [(c.ref, c.username, c.established) for c in candidates] == [
        ("Alice/encoding-1", "Alice", True),
        ("Bob/encoding-1", "Bob", True),
        ("Alice/encoding-2", "Alice", True),
    ]
    assert len({c.sha256 for c in candidates}) == 3
    assert check_identities(candidates) == IdentityCheck()


def test_the_result_is_json_ready() -> None:
    photos = [*clean_set(), cand("Dan/d1.jpg", face("Alice", 7)), cand("Alice/bob.jpg", face("Bob", 9))]
    out = check_identities(photos).as_dict()
    assert json.loads(json.dumps(out)) == out
    assert set(out["rejected"]) == {"Dan/d1.jpg", "Alice/bob.jpg"}


@pytest.mark.parametrize(
    ("photos", "message"),
    [
        ([cand("A/a.jpg", np.zeros(127))], "A/a.jpg: an encoding must be 128 finite values"),
        ([cand("A/a.jpg", np.zeros(128)), cand("A/b.jpg", np.zeros(129))], "A/b.jpg: an encoding must be"),
        ([cand("A/a.jpg", np.full(128, np.nan))], "128 finite values"),
        ([cand("A/a.jpg", np.zeros(128)), cand("A/a.jpg", np.ones(128))], "its own ref"),
    ],
)
def test_bad_input_is_refused(photos: list[Candidate], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        check_identities(photos)


# The sample photos, encoded once: ref ("User/file") -> (sha256, encoding).
@pytest.fixture(scope="module")
def sample(faces: Path) -> dict[str, tuple[str, list[float]]]:
    out = {}
    for path in sorted(faces.glob("images/*/*")) + sorted(faces.glob("probes/*")):
        result = encode_face(path)
        assert result.encoding is not None, f"{path}: {result.reason}"
        key = f"{path.parent.name}/{path.name}" if path.parent.name != "probes" else f"probe/{path.stem}"
        out[key] = (hashlib.sha256(path.read_bytes()).hexdigest(), result.encoding)
    return out


def tree(sample: dict[str, tuple[str, list[float]]], *drop: str) -> list[Candidate]:
    """The untouched sample tree, every photo accepted by an earlier sync, less `drop`."""
    return [
        Candidate(ref, ref.split("/")[0], sha, enc, True)
        for ref, (sha, enc) in sample.items()
        if not ref.startswith("probe/") and ref not in drop
    ]


def placed(
    sample: dict[str, tuple[str, list[float]]], source: str, ref: str, established: bool = False
) -> Candidate:
    sha, enc = sample[source]
    return Candidate(ref, ref.split("/")[0], sha, enc, established)


def reason_pattern(template: str) -> str:
    return re.escape(template).replace("DIST", r"0\.\d\d")


def test_the_untouched_sample_tree_passes(sample: dict[str, tuple[str, list[float]]]) -> None:
    photos = tree(sample)
    assert len(photos) == 12
    assert check_identities(photos) == IdentityCheck({}, [])
    # A first sync (nothing established) and new photos of enrolled users pass too.
    first = [Candidate(c.ref, c.username, c.sha256, c.encoding, False) for c in photos]
    probes = [
        placed(sample, f"probe/{u}", f"{u}/new.jpg") for u in ("Alex_Lacamoire", "Kit_Harington", "Obama")
    ]
    assert check_identities(first + probes) == IdentityCheck({}, [])


def test_a_photo_of_obama_filed_under_biden_is_caught(sample: dict[str, tuple[str, list[float]]]) -> None:
    photos = [*tree(sample, "Obama/obama_02.jpg"), placed(sample, "Obama/obama_02.jpg", "Biden/obama_02.jpg")]

    result = check_identities(photos)

    assert list(result.rejected) == ["Biden/obama_02.jpg"]
    assert re.fullmatch(
        reason_pattern("looks like Obama (d=DIST), not Biden"), result.rejected["Biden/obama_02.jpg"]
    )
    assert result.conflicts == []


def test_rose_leslies_folder_holding_a_photo_of_obama(sample: dict[str, tuple[str, list[float]]]) -> None:
    rose = ["Rose_Leslie/rose_leslie_01.jpg", "Rose_Leslie/rose_leslie_02.jpg"]
    # In the whole tree the stranger is recognised as Obama ...
    photos = [*tree(sample, rose[1]), placed(sample, "probe/Obama", "Rose_Leslie/obama.jpg")]
    reason = check_identities(photos).rejected
    assert list(reason) == ["Rose_Leslie/obama.jpg"]
    assert re.fullmatch(
        reason_pattern("looks like Obama (d=DIST), not Rose_Leslie"), reason["Rose_Leslie/obama.jpg"]
    )

    # ... without Obama enrolled, Rose's accepted photo says who she is ...
    alone = [placed(sample, rose[0], rose[0], True), placed(sample, "probe/Obama", "Rose_Leslie/obama.jpg")]
    reason = check_identities(alone).rejected
    assert re.fullmatch(
        reason_pattern("a different person from Rose_Leslie's other photos (d=DIST)"),
        reason["Rose_Leslie/obama.jpg"],
    )
    assert float(reason["Rose_Leslie/obama.jpg"][-5:-1]) > DIFFERENT_PERSON

    # ... and with neither accepted before, neither photo is kept.
    new = [placed(sample, rose[0], rose[0]), placed(sample, "probe/Obama", "Rose_Leslie/obama.jpg")]
    reason = check_identities(new).rejected
    assert set(reason) == {rose[0], "Rose_Leslie/obama.jpg"}
    assert reason[rose[0]].startswith("a different person from Rose_Leslie/obama.jpg (d=")
    assert reason[rose[0]].endswith("cannot tell which photo shows Rose_Leslie")


@pytest.mark.parametrize("source", ["probe/Kit_Harington", "Kit_Harington/kit_harington_02.jpg"])
def test_kit_haringtons_face_under_a_second_username(
    sample: dict[str, tuple[str, list[float]]], source: str
) -> None:
    photos = [*tree(sample, source), placed(sample, source, "Jon_Snow/jon_snow_01.jpg")]

    result = check_identities(photos)

    assert list(result.rejected) == ["Jon_Snow/jon_snow_01.jpg"]
    assert re.fullmatch(
        reason_pattern("same person as Kit_Harington (d=DIST)"), result.rejected["Jon_Snow/jon_snow_01.jpg"]
    )
    (conflict,) = result.conflicts
    assert conflict["users"] == ["Jon_Snow", "Kit_Harington"] and conflict["kept"] == "Kit_Harington"
    assert 0 < conflict["distance"] < SAME_PERSON


def test_the_same_sample_file_in_two_folders(sample: dict[str, tuple[str, list[float]]]) -> None:
    photos = [*tree(sample), placed(sample, "Obama/obama_01.jpg", "Barack/barack_01.jpg")]

    result = check_identities(photos)

    assert result.rejected == {"Barack/barack_01.jpg": "same file as Obama/obama_01.jpg"}
    assert [(c["kind"], c["users"]) for c in result.conflicts] == [("same file", ["Barack", "Obama"])]
