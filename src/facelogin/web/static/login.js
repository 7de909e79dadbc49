// The camera login: on Start, ask the server for a one-time challenge, prompt each action in turn
// while capturing a burst of frames (~10 per second), post them with their capture times, follow
// the answer. Nothing is captured, and the camera is not opened, before Start is pressed.
"use strict";

const LIVENESS = document.body.dataset.liveness === "challenge";
const FRAMES = Number(document.body.dataset.frames || 5);
const LOGIN_URL = document.body.dataset.loginUrl;
const CHALLENGE_URL = document.body.dataset.challengeUrl;
const FPS = 10;
const video = document.getElementById("camera");
const canvas = document.getElementById("frame");
const statusLine = document.getElementById("status");
const start = document.getElementById("start");
const prompt = document.getElementById("prompt");
const arrow = document.getElementById("arrow");
const words = document.getElementById("words");
const countdown = document.getElementById("countdown");

// The preview is mirrored (a selfie view): a person turning to their own left sees their face turn
// toward the screen's left, hence the arrows.
const ARROWS = { blink: "◉", turn_left: "←", turn_right: "→" };

function say(text, kind) {
  statusLine.textContent = text;
  statusLine.className = "status" + (kind ? " " + kind : "");
}

function sleep(ms) {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

function cameraProblem(error) {
  switch (error && error.name) {
    case "NotAllowedError":
    case "SecurityError":
      return "Camera permission denied: allow this site to use the camera (the camera icon in the address bar), then press Start.";
    case "NotFoundError":
    case "OverconstrainedError":
      return "No camera found: connect a camera, then press Start.";
    case "NotReadableError":
    case "AbortError":
      return "The camera cannot be started: another program may be using it. Close it, then press Start.";
    default:
      return "The camera cannot be used here (" + (error && error.message ? error.message : error) + ").";
  }
}

async function openCamera() {
  if (!window.isSecureContext || !navigator.mediaDevices || !navigator.mediaDevices.getUserMedia) {
    throw { name: "Insecure", message: "" };
  }
  return navigator.mediaDevices.getUserMedia({
    video: { width: { ideal: 640 }, height: { ideal: 480 }, facingMode: "user" },
    audio: false,
  });
}

async function waitForPicture() {
  const deadline = Date.now() + 10000;
  while (!(video.videoWidth > 0 && video.readyState >= 2)) {
    if (Date.now() > deadline) throw { name: "AbortError", message: "no picture from the camera" };
    await sleep(50);
  }
}

function grab() {
  // As the camera sees it, not mirrored: the server knows which way a turn moves the nose.
  const scale = Math.min(1, 640 / video.videoWidth);
  canvas.width = Math.round(video.videoWidth * scale);
  canvas.height = Math.round(video.videoHeight * scale);
  canvas.getContext("2d").drawImage(video, 0, 0, canvas.width, canvas.height);
  return canvas.toDataURL("image/jpeg", 0.85);
}

async function post(url, body) {
  const response = await fetch(url, {
    method: "POST",
    headers: { "Content-Type": "application/json" },
    credentials: "same-origin",
    body: JSON.stringify(body),
  });
  let answer = {};
  try {
    answer = await response.json();
  } catch (error) {
    answer = { error: "The server answered " + response.status + "." };
  }
  return { response, answer };
}

async function burst(challenge) {
  // Each action gets an equal share of the capture time; frames are taken throughout.
  const total = (challenge.seconds || 4) * 1000;
  const slot = total / challenge.actions.length;
  const frames = [];
  const began = performance.now();
  prompt.hidden = false;
  let shown = -1;
  for (;;) {
    const now = performance.now();
    const elapsed = now - began;
    if (elapsed >= total) break;
    const index = Math.min(challenge.actions.length - 1, Math.floor(elapsed / slot));
    if (index !== shown) {
      shown = index;
      const action = challenge.actions[index];
      arrow.textContent = ARROWS[action] || "";
      words.textContent = (challenge.prompts && challenge.prompts[index]) || action;
    }
    countdown.textContent = Math.ceil((slot * (index + 1) - elapsed) / 1000) + " s";
    frames.push({ t: now, image: grab() });
    const next = began + frames.length * (1000 / FPS);
    await sleep(Math.max(0, next - performance.now()));
  }
  prompt.hidden = true;
  return frames;
}

async function stills() {
  const frames = [];
  for (let i = 0; i < FRAMES; i++) {
    if (i) await sleep(120);
    frames.push(grab());
  }
  return frames;
}

function finish(answer, response) {
  if (response.ok && answer.decision === "accepted") {
    say(answer.message || "Welcome.", "ok");
    window.location.assign(answer.redirect);
    return true;
  }
  if (response.status === 503 && response.headers.get("Retry-After")) {
    say(answer.error || "The server is busy: try again in " + response.headers.get("Retry-After") + " s.", "error");
    return false;
  }
  say(answer.message || answer.error || "Login failed (" + response.status + ").", "error");
  return false;
}

async function attempt() {
  start.disabled = true;
  start.hidden = true;
  let stream = null;
  try {
    say("Asking for the camera…");
    try {
      stream = await openCamera();
    } catch (error) {
      if (error && error.name === "Insecure") {
        say("The camera needs a secure page: open this site over HTTPS (or at http://localhost on this machine).", "error");
        return;
      }
      say(cameraProblem(error), "error");
      return;
    }
    video.srcObject = stream;
    await video.play().catch(() => {});
    await waitForPicture();
    let result;
    if (LIVENESS) {
      const issued = await post(CHALLENGE_URL, {});
      if (!issued.response.ok) {
        finish(issued.answer, issued.response);
        return;
      }
      say("Follow the prompts on the picture.");
      const frames = await burst(issued.answer);
      say("Checking…");
      result = await post(LOGIN_URL, { challenge: issued.answer.id, frames });
    } else {
      say("Hold still…");
      await sleep(250);
      const frames = await stills();
      say("Checking…");
      result = await post(LOGIN_URL, { frames });
    }
    if (finish(result.answer, result.response)) return;
  } catch (error) {
    say(cameraProblem(error), "error");
  } finally {
    prompt.hidden = true;
    if (stream) stream.getTracks().forEach((track) => track.stop());
    start.disabled = false;
    start.hidden = false;
    start.textContent = "Try again";
  }
}

start.addEventListener("click", attempt);
