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
      note.textContent = "Sending another link makes the earlier one stop working.";
      return;
    }
    var span = note.querySelector(".cooldown-seconds");
    if (span) span.textContent = String(left);
  }, 1000);
})();
