// Log out: a JSON POST (the server takes no form posts), then the login page, which starts nothing.
"use strict";

const button = document.getElementById("logout");
button.addEventListener("click", async () => {
  button.disabled = true;
  try {
    const response = await fetch(button.dataset.logoutUrl, {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      credentials: "same-origin",
      body: "{}",
    });
    const answer = await response.json().catch(() => ({}));
    window.location.assign(answer.redirect || "/login?notice=logged-out");
  } catch (error) {
    button.disabled = false;
  }
});
