"""The Pi's liveness login: a challenge made here, prompted on the terminal (and spoken when a speech
synthesiser is installed), answered in front of the camera, each frame looked at as it arrives.

The challenge is the web's (`challenge.draw_actions`: two different actions, one a turn), issued and
taken by this process, so it is used once and the burst is captured inside its window by
construction. The decision is `BurstVerifier`'s, as on the web.
"""

from __future__ import annotations

import shutil
import subprocess
import time
from collections.abc import Callable, Iterator
from typing import Any

from facelogin.login.authenticator import Authenticator
from facelogin.login.challenge import BURST_SECONDS, PROMPTS, ChallengeStore, draw_actions
from facelogin.login.errors import LoginError
from facelogin.login.frames import Frame

FPS = 10
SPEAKERS = ("espeak-ng", "espeak", "spd-say")


def speaker() -> Callable[[str], None] | None:
    """A function that says a prompt aloud without waiting, when a speech synthesiser is installed."""
    for name in SPEAKERS:
        path = shutil.which(name)
        if path:

            def say(text: str, path: str = path) -> None:
                subprocess.Popen([path, text], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

            return say
    return None


def live_login(
    auth: Authenticator,
    frames: Iterator[Frame],
    prompt: Callable[[str, str, float], None],
    *,
    actions: Callable[[], tuple[str, ...]] = draw_actions,
    mirrored: bool = False,
    seconds: float = BURST_SECONDS,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
) -> dict[str, Any]:
    """Challenge the person in front of `frames`' camera and decide; the JSON-ready result.

    `prompt(action, words, seconds)` is called as each action's turn comes. `actions`, `clock` and
    `sleep` are for tests that play a recorded burst: the CLI never passes them.
    """
    start = time.perf_counter()
    # The camera opens (and its exposure settles) before anything is asked of the person.
    if next(frames, None) is None:
        raise LoginError("the camera gave no frame")
    store = ChallengeStore(clock, actions=actions)
    challenge = store.take(store.issue().id)
    verifier = auth.verifier(challenge.actions, mirrored, eager=True)
    slot = seconds / len(challenge.actions)
    began = clock()
    captured = 0
    try:
        for index, action in enumerate(challenge.actions):
            prompt(action, PROMPTS[action], slot)
            while clock() - began < slot * (index + 1):
                frame = next(frames, None)
                if frame is None:
                    break
                verifier.add(frame.pixels, clock())
                captured += 1
                sleep(max(0.0, began + captured / FPS - clock()))
    finally:
        close = getattr(frames, "close", None)
        if close is not None:
            close()  # the camera is free again before the decision is worked out
    last = time.perf_counter()
    result = auth.burst_result(verifier, verifier.finish(None), start)
    result["ms"]["after_last_frame"] = round((time.perf_counter() - last) * 1000, 1)
    result["challenge"] = list(challenge.actions)
    return result
