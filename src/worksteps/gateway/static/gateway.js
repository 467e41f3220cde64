/* Worksteps Science Gateway: the little JavaScript its pages use. Every page works without it
   (forms post, links navigate); it adds the CSRF header to API calls, expiry countdowns, and
   live progress bars fed by server-sent events. No libraries, nothing from another origin. */
(function () {
  "use strict";

  function csrf() {
    const meta = document.querySelector('meta[name="csrf-token"]');
    return meta ? meta.content : "";
  }

  /* fetch() a gateway /api URL as the signed-in user: the session cookie plus, for unsafe
     methods, the session's CSRF token. Resolves to {status, ok, body}. */
  async function api(path, options = {}) {
    const method = (options.method || "GET").toUpperCase();
    const headers = new Headers(options.headers || {});
    headers.set("Accept", "application/json");
    if (method !== "GET" && method !== "HEAD") headers.set("X-CSRF-Token", csrf());
    const answer = await fetch(path, { ...options, method, headers, credentials: "same-origin" });
    const type = answer.headers.get("content-type") || "";
    const body = type.includes("json") ? await answer.json() : await answer.text();
    return { status: answer.status, ok: answer.ok, body };
  }

  /* <span data-expires="ISO 8601 instant">: counts down m:ss; at zero it reads "expired" and
     disables the buttons inside its nearest [data-expiry-scope] (an offer's Select). The
     server refuses an expired offer anyway; this only says so sooner. */
  function countdowns() {
    const items = Array.from(document.querySelectorAll("[data-expires]"));
    if (!items.length) return;
    function tick() {
      const now = Date.now();
      for (const el of items) {
        const left = Math.max(0, Math.round((Date.parse(el.dataset.expires) - now) / 1000));
        if (left > 0) {
          el.textContent = Math.floor(left / 60) + ":" + String(left % 60).padStart(2, "0");
          continue;
        }
        el.textContent = "expired";
        if (el.classList.contains("expired")) continue;
        el.classList.add("expired");
        const scope = el.closest("[data-expiry-scope]");
        if (scope) scope.querySelectorAll("button").forEach((b) => { b.disabled = true; });
      }
    }
    tick();
    setInterval(tick, 1000);
  }

  /* <section data-events="URL"> follows a session's server-sent events (the broker's, relayed):
       step, progress {step, kind, state, percent, message}: the bar of the step's group,
                      <progress data-step=GROUP> and [data-step-text=GROUP]; a group's bar shows
                      the mean of its steps (stage: data; area, place: storage; image: image;
                      launch: session); a group without a bar gets one
       phase {phase}: [data-phase]; once available or final the page reloads, and the server
                      renders it with the access link or the outcome
       relay {status}: [data-connection] (the gateway is reconnecting to the site)
     EventSource reconnects by itself with Last-Event-ID, so nothing is missed or repeated. */
  const SETTLED = ["AVAILABLE", "RUNNING", "COMPLETED", "FAILED", "CANCELLED", "REJECTED",
    "EXPIRED"];
  const GROUPS = { stage: "data", area: "storage", place: "storage", image: "image",
    launch: "session", monitor: null };

  function stepBar(view, group) {
    for (const bar of view.querySelectorAll("progress[data-step]")) {
      if (bar.dataset.step === group) return bar;
    }
    const list = view.querySelector("[data-steps]");
    if (!list) return null;
    const item = document.createElement("li");
    item.className = "step";
    const label = document.createElement("span");
    label.textContent = group;
    const bar = document.createElement("progress");
    bar.max = 100;
    bar.value = 0;
    bar.dataset.step = group;
    bar.setAttribute("aria-label", group);
    const text = document.createElement("span");
    text.dataset.stepText = group;
    item.append(label, bar, text);
    list.append(item);
    return bar;
  }

  function follow(view) {
    const source = new EventSource(view.dataset.events);
    const connection = view.querySelector("[data-connection]");
    const steps = new Map(); // step key -> {group, percent}
    const say = (text) => { if (connection) connection.textContent = text; };
    function note(event) {
      const data = JSON.parse(event.data);
      const kind = String(data.kind || "");
      const group = kind in GROUPS ? GROUPS[kind] : kind || String(data.step);
      if (!group) return;
      const entry = steps.get(data.step) || { group, percent: 0 };
      if (typeof data.percent === "number") entry.percent = data.percent;
      if (data.state === "DONE") entry.percent = 100;
      steps.set(data.step, entry);
      const members = Array.from(steps.values()).filter((e) => e.group === group);
      const mean = members.reduce((sum, e) => sum + e.percent, 0) / members.length;
      const bar = stepBar(view, group);
      if (bar) bar.value = mean;
      for (const text of view.querySelectorAll("[data-step-text]")) {
        if (text.dataset.stepText === group) {
          text.textContent = mean >= 100 ? "done" : data.message || Math.round(mean) + "%";
        }
      }
    }
    source.onopen = () => say("");
    source.onerror = () => say("Connection lost; reconnecting…");
    source.addEventListener("relay", () => say("The site's stream broke; reconnecting…"));
    source.addEventListener("step", note);
    source.addEventListener("progress", note);
    source.addEventListener("phase", (event) => {
      const data = JSON.parse(event.data);
      view.querySelectorAll("[data-phase]").forEach((el) => { el.textContent = data.phase; });
      if (SETTLED.includes(data.phase)) {
        source.close();
        window.location.reload();
      }
    });
  }

  window.worksteps = { api, csrf };
  document.addEventListener("DOMContentLoaded", () => {
    countdowns();
    document.querySelectorAll("[data-events]").forEach(follow);
  });
})();
