// The outage notice form: the notice is heard before it is published. "Listen" asks the server
// to speak the text (GET /api/admin/notices/preview, nothing kept) and plays it; the publish
// button opens once the audio has played through, and closes again when the text changes.
(function () {
  "use strict";
  var form = document.getElementById("notice-form");
  if (!form) { return; }
  var text = document.getElementById("notice-text");
  var audio = document.getElementById("notice-audio");
  var listen = document.getElementById("notice-listen");
  var publish = document.getElementById("notice-publish");
  var heard = "";

  listen.addEventListener("click", function () {
    var words = text.value.trim();
    if (!words) { text.focus(); return; }
    heard = "";
    publish.disabled = true;
    audio.src = "/api/admin/notices/preview?text=" + encodeURIComponent(words);
    audio.dataset.text = words;
    audio.play().catch(function () { /* the controls let the user start it */ });
  });
  audio.addEventListener("ended", function () {
    heard = audio.dataset.text || "";
    publish.disabled = heard !== text.value.trim();
    form.dataset.heard = publish.disabled ? "" : "yes";
  });
  text.addEventListener("input", function () {
    publish.disabled = heard === "" || heard !== text.value.trim();
  });
})();
