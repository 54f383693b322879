// The time-zone page: offer the zone the browser reports, for the person to confirm.
// Without JavaScript the select works on its own; this only adds the one-click offer.
(function () {
  "use strict";
  var offer = document.getElementById("zone-suggestion");
  var select = document.getElementById("id_time_zone");
  if (!offer || !select) return;
  var zone = "";
  try {
    zone = Intl.DateTimeFormat().resolvedOptions().timeZone || "";
  } catch (error) {
    return;
  }
  var known = Array.prototype.some.call(select.options, function (option) {
    return option.value === zone;
  });
  // Nothing to offer: a zone the list does not have, or the one already in use.
  if (!zone || !known || zone === offer.getAttribute("data-current")) return;
  offer.querySelector("input[name=time_zone]").value = zone;
  Array.prototype.forEach.call(offer.querySelectorAll("[data-zone-name]"), function (node) {
    node.textContent = zone;
  });
  offer.hidden = false;
})();
