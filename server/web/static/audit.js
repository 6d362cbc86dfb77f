// Verifies the audit log's hash chain in the browser (docs/audit.md, "The construction"):
// reads every entry from /v1/audit and recomputes each digest and hash; trusts nothing else.
(function () {
  "use strict";
  var button = document.getElementById("verify-audit");
  var out = document.getElementById("verify-result");
  if (!button || !out) return;

  // canonical(x): JSON with keys sorted at every level, no whitespace, non-ASCII as itself.
  function canonical(value) {
    if (value === null || typeof value !== "object") return JSON.stringify(value);
    if (Array.isArray(value)) return "[" + value.map(canonical).join(",") + "]";
    return "{" + Object.keys(value).sort().map(function (key) {
      return JSON.stringify(key) + ":" + canonical(value[key]);
    }).join(",") + "}";
  }
  function sha(text) { return window.sha256(text); }  // UTF-8, lowercase hex

  function fill(template, values) {
    return template.replace(/%\((\w+)\)s/g, function (_, name) { return values[name]; });
  }

  async function verify() {
    var prev = "0".repeat(64), expected = 1, after = 0;
    for (;;) {
      var response = await fetch("/v1/audit?after=" + after + "&limit=1000", { headers: { Accept: "application/json" } });
      if (!response.ok) throw new Error("HTTP " + response.status);
      var page = await response.json();
      if (page.length === 0) return { ok: true, count: expected - 1, head: prev };
      for (var i = 0; i < page.length; i++) {
        var e = page[i];
        var why = null;
        if (e.seq !== expected) why = "an entry is missing before it";
        else if (sha(canonical(e.content)) !== e.digest) why = "its content does not match its digest";
        else if (e.prev_hash !== prev) why = "prev_hash is not the hash of the entry before";
        else if (sha(canonical({ seq: e.seq, at: e.at, kind: e.kind, subject: e.subject, digest: e.digest, prev_hash: e.prev_hash })) !== e.hash) why = "its hash does not match";
        if (why) return { ok: false, seq: e.seq, why: why, head: prev };
        prev = e.hash; expected += 1; after = e.seq;
      }
    }
  }

  button.addEventListener("click", async function () {
    button.disabled = true;
    out.className = "";
    out.textContent = out.dataset.running;
    try {
      var result = await verify();
      out.textContent = "";
      if (result.ok) {
        out.className = "ok";
        out.appendChild(document.createTextNode(fill(out.dataset.ok, { n: result.count }) + " "));
        var code = document.createElement("code");
        code.id = "head-hash";
        code.textContent = result.head;
        out.appendChild(code);
      } else {
        out.className = "bad";
        out.textContent = fill(out.dataset.broken, { seq: result.seq, why: result.why });
      }
    } catch (err) {
      out.className = "bad";
      out.textContent = out.dataset.failed;
    } finally {
      button.disabled = false;
    }
  });
})();
