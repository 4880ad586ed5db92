// The reviewer's player. The audio is the <audio> element (the signed link, streamed with range
// requests); the waveform is drawn by wavesurfer.js from the peaks the server computed, so a long
// call is never decoded in the browser. The checks' marks and the paused stretches come from the
// page itself (the list of checks, the transcript). While the audio plays, the word being said is
// highlighted; a word, or anything with data-seek (a mark, a comment's moment), moves the audio there.
(function () {
  "use strict";
  var root = document.getElementById("player");
  var audio = document.getElementById("call-audio");
  if (!root || !audio) { return; }
  var playButton = document.getElementById("play");
  var clockText = document.getElementById("clock");
  var words = Array.prototype.slice.call(document.querySelectorAll(".transcript .w"));
  var starts = words.map(function (w) { return parseFloat(w.getAttribute("data-s")); });
  var ends = words.map(function (w) { return parseFloat(w.getAttribute("data-e")); });
  var current = -1;
  var wave = null;

  function clock(seconds) {
    var s = Math.max(0, Math.floor(seconds)), h = Math.floor(s / 3600), m = Math.floor((s % 3600) / 60);
    var rest = s % 60, two = function (n) { return (n < 10 ? "0" : "") + n; };
    return h ? h + ":" + two(m) + ":" + two(rest) : m + ":" + two(rest);
  }

  // The word said at time t: the last word that started at or before t, while it lasts.
  function wordAt(t) {
    var lo = 0, hi = starts.length - 1, found = -1;
    while (lo <= hi) {
      var mid = (lo + hi) >> 1;
      if (starts[mid] <= t) { found = mid; lo = mid + 1; } else { hi = mid - 1; }
    }
    return found >= 0 && t < ends[found] + 0.05 ? found : -1;
  }

  function keepInView(el) {
    var box = document.getElementById("transcript");
    if (!box) { return; }
    var top = el.offsetTop - box.offsetTop, bottom = top + el.offsetHeight;
    if (top < box.scrollTop || bottom > box.scrollTop + box.clientHeight) {
      box.scrollTop = Math.max(0, top - box.clientHeight / 3);
    }
  }

  function show(t) {
    if (clockText) { clockText.textContent = clock(t); }
    var index = wordAt(t);
    if (index === current) { return; }
    if (current >= 0) { words[current].classList.remove("now"); }
    current = index;
    if (index >= 0) { words[index].classList.add("now"); keepInView(words[index]); }
  }

  function seek(t) {
    var duration = isFinite(audio.duration) ? audio.duration : parseFloat(root.getAttribute("data-duration")) || t;
    t = Math.max(0, Math.min(t, duration));
    if (wave) { wave.setTime(t); } else { audio.currentTime = t; }
    show(t);
  }

  // While playing, follow the audio every frame (timeupdate alone comes only 4 times a second).
  function follow() {
    show(audio.currentTime);
    if (!audio.paused && !audio.ended) { window.requestAnimationFrame(follow); }
  }

  audio.addEventListener("play", function () {
    if (playButton) { playButton.textContent = playButton.getAttribute("data-pause"); }
    window.requestAnimationFrame(follow);
  });
  audio.addEventListener("pause", function () {
    if (playButton) { playButton.textContent = playButton.getAttribute("data-play"); }
  });
  audio.addEventListener("seeked", function () { show(audio.currentTime); });
  audio.addEventListener("timeupdate", function () { show(audio.currentTime); });
  if (playButton) {
    playButton.addEventListener("click", function () {
      if (audio.paused) { audio.play(); } else { audio.pause(); }
    });
  }

  document.addEventListener("click", function (event) {
    var target = event.target.closest ? event.target.closest("[data-seek], .transcript .w") : null;
    if (target) {
      var at = parseFloat(target.getAttribute(target.hasAttribute("data-seek") ? "data-seek" : "data-s"));
      if (!isNaN(at)) { seek(at); }
      return;
    }
    var into = event.target.closest ? event.target.closest("[data-moment-into]") : null;
    if (into) {
      var field = document.getElementById(into.getAttribute("data-moment-into"));
      if (field) { field.value = audio.currentTime.toFixed(1); }
    }
  });

  var start = parseFloat(root.getAttribute("data-start"));
  if (!isNaN(start)) {
    audio.currentTime = start;   // kept as the start position until the media is ready
    audio.addEventListener("loadedmetadata", function () {
      if (Math.abs(audio.currentTime - start) > 0.05) { audio.currentTime = start; }
    }, { once: true });
    show(start);
  }

  function marks() {
    var found = [];
    document.querySelectorAll("[data-mark]").forEach(function (el) {
      found.push({ start: parseFloat(el.getAttribute("data-s")), end: parseFloat(el.getAttribute("data-e")),
                   passed: el.getAttribute("data-passed") === "1", label: el.getAttribute("data-label"),
                   check: el.getAttribute("data-mark") });
    });
    document.querySelectorAll(".turn.paused").forEach(function (el) {
      found.push({ start: parseFloat(el.getAttribute("data-s")), end: parseFloat(el.getAttribute("data-e")),
                   paused: true, label: "", check: "paused" });
    });
    return found;
  }

  function draw(data) {
    if (!window.WaveSurfer) { return; }
    var regions = window.WaveSurfer.Regions.create();
    wave = window.WaveSurfer.create({
      container: "#waveform", media: audio, peaks: data.peaks, duration: data.duration_s, height: 60,
      normalize: true, interact: true, dragToSeek: true, cursorColor: "#1d2733", cursorWidth: 2,
      splitChannels: [{ waveColor: "#7fa3dc", progressColor: "#2f63b8" }, { waveColor: "#e0b184", progressColor: "#b0661e" }],
      plugins: [regions]
    });
    wave.on("decode", function () {
      marks().forEach(function (m, i) {
        var color = m.paused ? "rgba(91, 102, 115, .25)" : m.passed ? "rgba(27, 127, 59, .35)" : "rgba(179, 38, 30, .45)";
        var end = m.end - m.start < 0.25 ? m.start + 0.25 : m.end;   // a moment shows as a thin mark
        var region = regions.addRegion({ id: "mark-" + i + "-" + m.check, start: m.start, end: end, color: color,
                                         drag: false, resize: false });
        region.element.setAttribute("data-check", m.check);
        if (m.label) { region.element.setAttribute("title", m.label); }
        region.element.setAttribute("data-at", String(m.start));
      });
    });
    regions.on("region-clicked", function (region, event) {
      event.stopPropagation();
      seek(region.start);
    });
  }

  fetch(root.getAttribute("data-peaks"), { credentials: "same-origin" })
    .then(function (response) { return response.ok ? response.json() : null; })
    .then(function (data) { if (data) { draw(data); } });
})();
