// The operators' SOS alarm on /ops (docs/safety.md): the banner follows each city frame's count
// of alerts nobody acknowledged, and a tone sounds when the count rises. Browsers let a page
// play sound only after a gesture on it, so the "Sound on" button (any click does) unlocks it;
// the banner shows either way.
(function () {
  "use strict";
  var banner = document.getElementById("sos-alarm");
  if (!banner) return;  // not an operator: no alarm
  var text = document.getElementById("sos-alarm-text");
  var button = document.getElementById("sos-sound");
  var audio = null;
  var last = banner.hidden ? 0 : -1;  // -1: alerts were waiting when the page loaded

  function unlock() {
    if (audio) return;
    var Context = window.AudioContext || window.webkitAudioContext;
    if (!Context) return;
    audio = new Context();
    if (button) button.hidden = true;
  }

  function tone() {
    if (!audio) return;
    var now = audio.currentTime;
    for (var i = 0; i < 3; i++) {
      var osc = audio.createOscillator(), gain = audio.createGain();
      osc.frequency.value = 880;
      gain.gain.setValueAtTime(0.25, now + i * 0.4);
      gain.gain.exponentialRampToValueAtTime(0.001, now + i * 0.4 + 0.3);
      osc.connect(gain); gain.connect(audio.destination);
      osc.start(now + i * 0.4); osc.stop(now + i * 0.4 + 0.3);
    }
  }

  document.addEventListener("click", unlock);
  document.addEventListener("ops-city", function (event) {
    var safety = event.detail.safety;
    if (!safety) return;
    var n = safety.unacknowledged;
    banner.hidden = n === 0;
    banner.dataset.count = String(n);
    if (n > 0) {
      text.textContent = n === 1 ? banner.dataset.one : banner.dataset.many.replace("{n}", String(n));
    }
    if (n > last && last >= 0) tone();
    last = n;
  });
})();
