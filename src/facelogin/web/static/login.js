// The camera login: ask for the camera, take a few frames, post them, follow the answer.
"use strict";

const FRAMES = Number(document.body.dataset.frames || 5);
const LOGIN_URL = document.body.dataset.loginUrl;
const video = document.getElementById("camera");
const canvas = document.getElementById("frame");
const statusLine = document.getElementById("status");
const retry = document.getElementById("retry");

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
      return "Camera permission denied: allow this site to use the camera (the camera icon in the address bar), then press Try again.";
    case "NotFoundError":
    case "OverconstrainedError":
      return "No camera found: connect a camera, then press Try again.";
    case "NotReadableError":
    case "AbortError":
      return "The camera cannot be started: another program may be using it. Close it, then press Try again.";
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
  const scale = Math.min(1, 640 / video.videoWidth);
  canvas.width = Math.round(video.videoWidth * scale);
  canvas.height = Math.round(video.videoHeight * scale);
  canvas.getContext("2d").drawImage(video, 0, 0, canvas.width, canvas.height);
  return canvas.toDataURL("image/jpeg", 0.9);
}

async function attempt() {
  retry.hidden = true;
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
      retry.hidden = false;
      return;
    }
    video.srcObject = stream;
    await video.play().catch(() => {});
    await waitForPicture();
    say("Hold still…");
    await sleep(250);
    const frames = [];
    for (let i = 0; i < FRAMES; i++) {
      if (i) await sleep(120);
      frames.push(grab());
    }
    say("Checking…");
    const response = await fetch(LOGIN_URL, {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      credentials: "same-origin",
      body: JSON.stringify({ frames }),
    });
    let answer = {};
    try {
      answer = await response.json();
    } catch (error) {
      answer = { error: "The server answered " + response.status + "." };
    }
    if (response.ok && answer.decision === "accepted") {
      say(answer.message || "Welcome.", "ok");
      window.location.assign(answer.redirect);
      return;
    }
    say(answer.message || answer.error || "Login failed (" + response.status + ").", "error");
    retry.hidden = false;
  } catch (error) {
    say(cameraProblem(error), "error");
    retry.hidden = false;
  } finally {
    if (stream) stream.getTracks().forEach((track) => track.stop());
  }
}

retry.addEventListener("click", attempt);
attempt();
