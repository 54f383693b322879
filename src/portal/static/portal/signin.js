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
  }, 1000);
})();
