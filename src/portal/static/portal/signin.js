// Count down the "Send another link" cool-down and enable the button when it ends.
// The page works without this: the server renders the button disabled with the seconds left.
(function () {
  var form = document.querySelector("form.resend");
  if (!form) return;
  var left = parseInt(form.getAttribute("data-cooldown"), 10) || 0;
  var button = form.querySelector("button");
  var note = form.querySelector("#cooldown-note");
  if (left <= 0) return;
  var timer = setInterval(function () {
    left -= 1;
    if (left <= 0) {
      clearInterval(timer);
      button.disabled = false;
      button.removeAttribute("aria-describedby");
      note.textContent = "Sending another link makes the earlier one stop working.";
      // Announced once, when it matters; the per-second count is not a live region.
      var done = document.getElementById("cooldown-done");
      if (done) done.textContent = "You can send another link now.";
      return;
    }
    var span = note.querySelector(".cooldown-seconds");
    if (span) span.textContent = String(left);
    var unit = note.querySelector(".cooldown-unit");
    if (unit) unit.textContent = left === 1 ? "second" : "seconds";
  }, 1000);
})();

// The waiting tab follows its request (rule 11): it asks the server for the state every two
// seconds, shows each change in its live region, and once another device has approved, it
// submits its own "I've approved it, continue" form, which is what signs it in. Without
// this script the same form is a button, and a reload shows the state.
(function () {
  var section = document.querySelector("section.approval[data-status-url]");
  if (!section) return;
  var url = section.getAttribute("data-status-url");
  var state = section.getAttribute("data-state");
  var live = document.getElementById("approval-state");
  var form = document.getElementById("approval-continue");
  var EVERY = 2000;
  // Bounded: no longer than the link lives (plus a minute for a last "expired"), and never
  // more than 15 minutes' worth of polls whatever the page says.
  var lifeLeft = parseInt(section.getAttribute("data-life-left"), 10) || 0;
  var polls = Math.min(Math.ceil((lifeLeft + 60) * 1000 / EVERY), 480);
  // False on the page that answered a continue refused: submitting again could only loop.
  var submitted = section.getAttribute("data-auto-continue") === "false";
  if (!live || !url || !form || polls <= 0) return;

  function show(next, message) {
    if (next === state) return;
    state = next;
    live.textContent = message;  // a role="status" region: read out once per change
    live.className = "approval-state approval-" + next;
  }

  function finish() {
    var waiting = document.querySelectorAll(".while-waiting");
    for (var i = 0; i < waiting.length; i += 1) waiting[i].hidden = true;
  }

  function poll() {
    polls -= 1;
    fetch(url, {credentials: "same-origin", cache: "no-store",
                headers: {"Accept": "application/json"}})
      .then(function (response) {
        // Too many polls (429) or the limiter down (503): wait, then ask again, as below.
        if (response.status === 429 || response.status === 503) throw new Error("later");
        return response.json();
      })
      .then(function (status) {
        show(status.state, status.message);
        if (status.state === "approved" && !submitted) {
          submitted = true;
          if (form.requestSubmit) form.requestSubmit(); else form.submit();
          return;
        }
        if (status.final) { finish(); return; }
        if (polls > 0) setTimeout(poll, EVERY);
      })
      // A dropped connection: try again at the same pace, within the same bound.
      .catch(function () { if (polls > 0) setTimeout(poll, EVERY); });
  }

  if (state === "waiting" || state === "approved") setTimeout(poll, state === "approved" ? 0 : EVERY);
})();
