/* spotid review: inlined into every page (no network, no framework). Keyboard-first. */
"use strict";
var spotid = (function () {
  var FLASH = "spotid-flash", STACK = "spotid-undo-stack";

  function toast(msg, err) {
    var t = document.getElementById("toast");
    t.textContent = msg;
    t.className = "show" + (err ? " err" : "");
    clearTimeout(toast.timer);
    toast.timer = setTimeout(function () { t.className = ""; }, err ? 6000 : 3500);
  }
  function flash(msg, err) { sessionStorage.setItem(FLASH, JSON.stringify({ msg: msg, err: !!err })); }
  function showFlash() {
    var f = sessionStorage.getItem(FLASH);
    if (f) { sessionStorage.removeItem(FLASH); f = JSON.parse(f); toast(f.msg, f.err); }
  }
  function key() { return STACK + ":" + document.body.dataset.catalog; }
  function stack() { try { return JSON.parse(sessionStorage.getItem(key()) || "[]"); } catch (e) { return []; } }
  function pushDecision(id) { var s = stack(); s.push(id); sessionStorage.setItem(key(), JSON.stringify(s.slice(-200))); }
  function popDecision() { var s = stack(); var id = s.pop(); sessionStorage.setItem(key(), JSON.stringify(s)); return id; }

  var busy = false;
  /* POST JSON; resolves with the parsed body, or rejects with {status, detail}. One request at a time,
     so a double key press cannot send a decision twice. */
  function post(url, body) {
    if (busy) return Promise.reject({ status: 0, detail: "busy", quiet: true });
    busy = true;
    return fetch(url, { method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify(body || {}) })
      .then(function (r) {
        return r.json().catch(function () { return {}; }).then(function (j) {
          if (!r.ok) throw { status: r.status, detail: j.detail || ("HTTP " + r.status) };
          return j;
        });
      })
      .finally(function () { busy = false; });
  }
  function describe(d) {
    var what = { confirm: "Confirmed", reject: "Rejected", "new": "New individual for", unusable: "Marked unusable", not_leopard: "Not a leopard:",
                 skip: "Skipped", merge: "Merged", undo: "Undid decision " + d.undoes + " on" }[d.action] || d.action;
    return what + (d.sighting_id ? " #" + d.sighting_id : "");
  }
  function failed(e, sightingId) {
    if (e.quiet) return;
    if (e.status === 409) {           // someone else decided first: reload the item in its current state
      flash("Conflict: " + e.detail, true);
      toast("Conflict: " + e.detail + " — reloading", true);
      setTimeout(function () {
        if (sightingId) location.href = "/queue?sighting=" + sightingId; else location.reload();
      }, 1500);
    } else {
      toast(typeof e.detail === "string" ? e.detail : JSON.stringify(e.detail), true);
    }
  }
  function undo(decisionId) {
    var id = decisionId || popDecision() || null;
    return post("/api/undo", { decision_id: id }).then(function (j) {
      var d = j.decision;
      flash("Undone (decision " + d.undoes + ")" + (d.sighting_id ? " — sighting #" + d.sighting_id + " restored" : ""));
      location.href = d.sighting_id ? "/queue?sighting=" + d.sighting_id : location.href;
    }).catch(failed);
  }
  function typing(ev) {
    var t = ev.target && ev.target.tagName;
    return t === "INPUT" || t === "SELECT" || t === "TEXTAREA" || ev.ctrlKey || ev.metaKey || ev.altKey;
  }
  function common() {
    showFlash();
    document.querySelectorAll("[data-undo]").forEach(function (b) { b.addEventListener("click", function () { undo(); }); });
    document.querySelectorAll("[data-undo-id]").forEach(function (b) {
      b.addEventListener("click", function () { undo(parseInt(b.getAttribute("data-undo-id"), 10)); });
    });
    document.addEventListener("keydown", function (ev) {
      if (typing(ev) || document.body.dataset.page === "queue") return;
      if (ev.key === "u") { ev.preventDefault(); undo(); }
    });
  }

  /* ---- the queue page -------------------------------------------------------------------- */
  function queue(D) {
    var item = D.item, cands = item.candidates, sel = 0, showLines = true, refIdx = {}, MAX_LINES = 60;
    var svgNS = "http://www.w3.org/2000/svg";
    var qimg = document.getElementById("qimg"), rimg = document.getElementById("rimg");
    var svg = document.getElementById("lines"), pair = document.getElementById("pair");
    if (item.proposed_rank) sel = item.proposed_rank - 1;

    function refsOf(c) {     // the verifier's reference first (the evidence is drawn on it), then the best crops
      var out = [];
      if (c.reference && c.reference.has_image) out.push({ crop: c.reference, evidence: true });
      c.references.forEach(function (r) {
        if (!c.reference || r.detection_id !== c.reference.detection_id) out.push({ crop: r, evidence: false });
      });
      return out;
    }
    function fmt(ts) { return ts ? ts.slice(0, 16).replace("T", " ") : "—"; }
    function pct(p) { return p === null || p === undefined ? "—" : Math.round(100 * p) + "%"; }

    function contentRect(img) {  // the drawn image inside an object-fit: contain box, relative to the pair
      var b = img.getBoundingClientRect(), p = pair.getBoundingClientRect();
      var s = Math.min(b.width / img.naturalWidth, b.height / img.naturalHeight);
      return { x: b.left - p.left + (b.width - img.naturalWidth * s) / 2,
               y: b.top - p.top + (b.height - img.naturalHeight * s) / 2, s: s };
    }
    function draw() {
      while (svg.firstChild) svg.removeChild(svg.firstChild);
      var c = cands[sel];
      if (!c || !showLines || !qimg || !rimg.naturalWidth || !qimg.naturalWidth) return;
      var r = refsOf(c)[refIdx[sel] || 0];
      if (!r || !r.evidence || !c.evidence) return;
      var a = contentRect(qimg), b = contentRect(rimg), ev = c.evidence, n = ev.query_pts.length;
      var step = n > MAX_LINES ? n / MAX_LINES : 1;   // an even subsample keeps the picture readable
      for (var f = 0; f < n; f += step) {
        var i = Math.floor(f);
        var x1 = a.x + ev.query_pts[i][0] * a.s, y1 = a.y + ev.query_pts[i][1] * a.s;
        var x2 = b.x + ev.ref_pts[i][0] * b.s, y2 = b.y + ev.ref_pts[i][1] * b.s;
        var col = "hsl(" + Math.round((i * 137.508) % 360) + ",90%,58%)";
        [["rgba(0,0,0,.55)", 3.2], [col, 1.5]].forEach(function (st) {
          var l = document.createElementNS(svgNS, "line");
          l.setAttribute("x1", x1); l.setAttribute("y1", y1); l.setAttribute("x2", x2); l.setAttribute("y2", y2);
          l.setAttribute("stroke", st[0]); l.setAttribute("stroke-width", st[1]); l.setAttribute("stroke-linecap", "round");
          svg.appendChild(l);
        });
        [[x1, y1], [x2, y2]].forEach(function (pt) {
          var ci = document.createElementNS(svgNS, "circle");
          ci.setAttribute("cx", pt[0]); ci.setAttribute("cy", pt[1]); ci.setAttribute("r", 3.2);
          ci.setAttribute("fill", col); ci.setAttribute("stroke", "#000"); ci.setAttribute("stroke-width", 1);
          svg.appendChild(ci);
        });
      }
    }
    function show(i) {
      if (!cands.length) return;
      sel = (i + cands.length) % cands.length;
      var c = cands[sel], refs = refsOf(c), k = refIdx[sel] || 0, r = refs[k];
      document.querySelectorAll(".cand").forEach(function (el) { el.classList.toggle("on", +el.dataset.i === sel); });
      document.getElementById("confirm-label").textContent = "Confirm as " + c.name + " (" + c.rank + ")";
      var cap = document.getElementById("rcap");
      cap.innerHTML = "";
      var b = document.createElement("b"); b.textContent = "Candidate " + c.rank + " · " + c.name; cap.appendChild(b);
      cap.appendChild(document.createTextNode(r ? " " + (r.crop.station || "") + " · " + fmt(r.crop.timestamp) +
        (r.evidence ? " · verifier's reference" : " · reference " + (k + 1) + "/" + refs.length) : " no stored reference crop"));
      rimg.style.visibility = r ? "visible" : "hidden";
      document.getElementById("rnone").textContent = r ? "" : "no reference crop stored for " + c.name;
      while (svg.firstChild) svg.removeChild(svg.firstChild);
      if (r) {
        var src = "/img/crop/" + r.crop.detection_id;
        if (rimg.getAttribute("src") !== src) { rimg.setAttribute("src", src); } else { draw(); }
      }
      var evb = document.getElementById("evbar");
      var nk = c.evidence ? c.evidence.query_pts.length : 0;
      evb.innerHTML = "";
      var ev = c.evidence, parts = [["P(same) ", pct(c.probability)]];
      if (ev && ev.inliers !== null) {   // the verifier whose pairs are drawn (under the fusion: the one that was surest)
        parts.push(["matched keypoints (" + ev.verifier + ") ", ev.inliers]);
        if (ev.verifier !== "RootSIFT" && c.verify_inliers !== null) { parts.push(["RootSIFT ", c.verify_inliers]); }
      } else {
        parts.push(["matched keypoints ", (c.verify_inliers === null ? nk : c.verify_inliers)]);
      }
      if (ev && ev.chance) { parts.push(["not counted, night-pair chance ", ev.chance]); }
      parts.push(["cosine ", c.embed_score === null ? "—" : c.embed_score.toFixed(2)]);
      if (ev && ev.scores && ev.scores.length) {
        parts.push(["each scorer's P ", ev.scores.map(function (sc) { return sc[0] + " " + pct(sc[1]); }).join(" · ")]);
      }
      parts.forEach(function (p) { var s = document.createElement("span"); s.textContent = p[0]; var bb = document.createElement("b");
        bb.textContent = p[1]; s.appendChild(bb); evb.appendChild(s); });
      var hint = document.createElement("span");
      hint.textContent = r && r.evidence && nk ? (showLines ? (nk > MAX_LINES ? MAX_LINES + " of " + nk : nk) +
        " " + (ev ? ev.verifier + " " : "") + "keypoint pairs drawn · v hides" : "lines hidden · v shows") :
        "keypoint lines are drawn on the verifier's reference (↑/↓)";
      evb.appendChild(hint);
      document.getElementById("refs-title").textContent = refs.length ?
        "References of " + c.name + " · " + (c.flank || "") + " flank · best first · click or ↑/↓" : "";
      var strip = document.getElementById("refs");
      strip.innerHTML = "";
      refs.forEach(function (rr, j) {
        var bt = document.createElement("button");
        bt.className = j === k ? "on" : "";
        bt.title = (rr.crop.station || "") + " " + fmt(rr.crop.timestamp) + (rr.crop.quality !== null ? " · quality " + rr.crop.quality.toFixed(2) : "");
        var im = document.createElement("img"); im.src = "/img/crop/" + rr.crop.detection_id; im.alt = ""; im.loading = "lazy";
        var sp = document.createElement("span"); sp.textContent = rr.evidence ? "matched" : (rr.crop.station || "") + " " + (rr.crop.timestamp || "").slice(0, 10);
        bt.appendChild(im); bt.appendChild(sp);
        bt.addEventListener("click", function () { refIdx[sel] = j; show(sel); });
        strip.appendChild(bt);
      });
    }
    function go(next) {  // navigate and keep the flash
      location.href = next ? "/queue?sighting=" + next : "/queue";
    }
    function decided(j) {
      pushDecision(j.decision.id);
      var name = "";
      if (j.decision.action === "confirm" || j.decision.action === "new") {
        var inds = j.decision["new"].individuals;
        for (var key in inds) { if (inds[key]) name = " → " + inds[key].name; }
      }
      flash(describe(j.decision) + name + " · u undoes");
      go(j.next);
    }
    function act(action, extra) {
      var body = { version: item.version };
      for (var k in extra || {}) body[k] = extra[k];
      return post("/api/sightings/" + item.sighting_id + "/" + action, body).then(decided)
        .catch(function (e) { failed(e, item.sighting_id); });
    }
    function confirm(i) {
      var c = cands[i];
      if (!c) { toast("no candidate " + (i + 1), true); return; }
      act("confirm", { individual_id: c.individual_id });
    }

    /* merge dialog */
    var modal = document.getElementById("merge-modal"), keepSel = document.getElementById("merge-keep"),
        absorbSel = document.getElementById("merge-absorb");
    var mergeable = cands.map(function (c) { return { id: c.individual_id, label: c.rank + " · " + c.name + " (" + c.n_sightings + " sightings)" }; });
    if (item.proposed && !item.proposed_rank) mergeable.push({ id: item.proposed.id, label: "proposal · " + item.proposed.name });
    mergeable.forEach(function (m) {
      [keepSel, absorbSel].forEach(function (s) { var o = document.createElement("option"); o.value = m.id; o.textContent = m.label; s.appendChild(o); });
    });
    function openMerge() {
      if (mergeable.length < 2) { toast("merge needs two individuals on this page; use an individual's page", true); return; }
      keepSel.selectedIndex = sel; absorbSel.selectedIndex = sel === 0 ? 1 : 0;
      modal.classList.add("show"); keepSel.focus();
    }
    function closeMerge() { modal.classList.remove("show"); }
    function doMerge() {
      var keep = +keepSel.value, absorb = +absorbSel.value;
      if (keep === absorb) { toast("choose two different individuals", true); return; }
      post("/api/merge", { keep_id: keep, absorb_id: absorb, sighting_id: item.sighting_id }).then(function (j) {
        pushDecision(j.decision.id); closeMerge();
        flash("Merged · u undoes"); location.reload();
      }).catch(failed);
    }
    document.getElementById("merge-go").addEventListener("click", doMerge);
    document.getElementById("merge-cancel").addEventListener("click", closeMerge);
    modal.addEventListener("keydown", function (ev) {
      if (ev.key === "Escape") { ev.preventDefault(); closeMerge(); }
      if (ev.key === "Enter") { ev.preventDefault(); doMerge(); }
    });

    /* assign dialog: any individual of this flank, by name */
    var amodal = document.getElementById("assign-modal"), aname = document.getElementById("assign-name");
    function openAssign() {
      if (!D.assignable.length) { toast("no individual of this flank to assign to", true); return; }
      aname.value = ""; amodal.classList.add("show"); aname.focus();
    }
    function closeAssign() { amodal.classList.remove("show"); }
    function doAssign() {
      var v = aname.value.trim().toLowerCase(), hit = null;
      D.assignable.forEach(function (a) { if (a.name.toLowerCase() === v) hit = a; });
      if (!hit) { toast("no " + (item.flank || "") + "-flank individual named " + aname.value, true); return; }
      closeAssign(); act("confirm", { individual_id: hit.id });
    }
    document.getElementById("assign-go").addEventListener("click", doAssign);
    document.getElementById("assign-cancel").addEventListener("click", closeAssign);
    amodal.addEventListener("keydown", function (ev) {
      if (ev.key === "Escape") { ev.preventDefault(); closeAssign(); }
      if (ev.key === "Enter") { ev.preventDefault(); doAssign(); }
    });

    var buttons = { confirm: function () { confirm(sel); }, reject: function () { act("reject"); },
                    "new": function () { act("new"); }, unusable: function () { act("unusable"); },
                    not_leopard: function () { act("not_leopard"); },
                    "new-left": function () { act("new", { flank: "left" }); },
                    "new-right": function () { act("new", { flank: "right" }); },
                    skip: function () { act("skip"); }, merge: openMerge, assign: openAssign };
    document.querySelectorAll("[data-act]").forEach(function (b) {
      b.addEventListener("click", function () { buttons[b.dataset.act](); });
    });
    document.querySelectorAll(".cand").forEach(function (el) {
      el.addEventListener("click", function (ev) { if (ev.target.tagName !== "A") show(+el.dataset.i); });
      el.addEventListener("dblclick", function () { confirm(+el.dataset.i); });
    });
    document.addEventListener("keydown", function (ev) {
      if (typing(ev) || modal.classList.contains("show") || amodal.classList.contains("show")) return;
      var k = ev.key, done = true;
      if (k >= "1" && k <= "9") confirm(+k - 1);
      else if (k === "c") confirm(sel);
      else if (k === "r") { if (item.set_aside_reason) toast("nothing to reject: identify set this sighting aside", true); else act("reject"); }
      else if (k === "n") act("new");
      else if (k === "x") act("unusable");
      else if (k === "o") act("not_leopard");
      else if (k === "s") act("skip");
      else if (k === "m") openMerge();
      else if (k === "a") openAssign();
      else if (k === "u") undo();
      else if (k === "j") { if (D.nav.next) go(D.nav.next); }
      else if (k === "k") { if (D.nav.prev) go(D.nav.prev); }
      else if (k === "ArrowRight") show(sel + 1);
      else if (k === "ArrowLeft") show(sel - 1);
      else if (k === "ArrowDown" || k === "ArrowUp") {
        var c = cands[sel]; if (c) { var n = refsOf(c).length || 1;
          refIdx[sel] = ((refIdx[sel] || 0) + (k === "ArrowDown" ? 1 : -1) + n) % n; show(sel); }
      }
      else if (k === "v") { showLines = !showLines; show(sel); }
      else done = false;
      if (done) ev.preventDefault();
    });
    function fit() {  // image boxes as tall as the query crop's aspect needs, within the window
      if (!qimg || !qimg.naturalWidth) return;
      var box = qimg.parentNode, w = box.getBoundingClientRect().width;
      var room = window.innerHeight - box.getBoundingClientRect().top - 190 + window.scrollY;
      var h = Math.max(220, Math.min(w * qimg.naturalHeight / qimg.naturalWidth, Math.max(room, 300)));
      pair.style.setProperty("--pair-h", Math.round(h) + "px");
      // the strip of references below takes what height is left, within reason
      var left = window.innerHeight - (box.getBoundingClientRect().top + h) - 95;
      document.body.style.setProperty("--ref-h", Math.round(Math.max(90, Math.min(left, 150))) + "px");
      draw();
    }
    rimg.addEventListener("load", draw);
    if (qimg) { qimg.addEventListener("load", fit); if (qimg.complete) fit(); }
    window.addEventListener("resize", fit);
    show(sel);
    document.body.dataset.ready = "1";
  }

  /* ---- individual page: merge forms ------------------------------------------------------ */
  function individual(D) {
    function merge(keep, absorb) {
      post("/api/merge", { keep_id: keep, absorb_id: absorb }).then(function (j) {
        pushDecision(j.decision.id); flash("Merged · u undoes"); location.href = "/individuals/" + keep;
      }).catch(failed);
    }
    var into = document.getElementById("merge-into"), from = document.getElementById("merge-from");
    if (into) document.getElementById("merge-into-go").addEventListener("click", function () {
      if (into.value) merge(+into.value, D.id); });
    if (from) document.getElementById("merge-from-go").addEventListener("click", function () {
      if (from.value) merge(D.id, +from.value); });
  }

  document.addEventListener("DOMContentLoaded", common);
  return { queue: queue, individual: individual, undo: undo, toast: toast };
})();
