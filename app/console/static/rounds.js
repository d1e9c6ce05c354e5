"use strict";
(() => {
  const ACTIVE = ["pending", "voting", "training", "evaluating"];
  const form = document.getElementById("round-form");
  const augment = document.getElementById("augment");
  const augmentOn = document.getElementById("augment-on");
  const estimateBox = document.getElementById("round-estimate");
  const confirmBox = document.getElementById("round-confirm");
  let pending = null; // the config waiting for "Start anyway"
  let estimateTimer = null;
  let estimateSeq = 0;

  const isAdmin = () => (evoq.access.known ? Boolean(evoq.access.can.admin) : Boolean(evoq.token()));

  function progressText(r) {
    const p = r.progress || {};
    const parts = [];
    if (p.pairs_total) parts.push(`votes ${p.pairs_voted || 0}/${p.pairs_total}`);
    if (p.train_max_steps) parts.push(`step ${p.train_step || 0}/${p.train_max_steps}`);
    return parts.join(" · ") || "–";
  }

  async function load() {
    const body = document.querySelector("#rounds tbody");
    if (!isAdmin()) {
      body.replaceChildren(evoq.el("tr", {}, evoq.el("td", { colspan: 6, class: "muted" },
        "Rounds are admin data: enter the admin token above.")));
      estimateBox.replaceChildren();
      return;
    }
    const list = await evoq.api("/v1/admin/rounds");
    body.replaceChildren(...list.items.map((r) => evoq.el("tr", { "data-round": r.id },
      evoq.el("td", {}, evoq.el("a", { href: `/console/rounds/${r.id}` }, `#${r.id}`)),
      evoq.el("td", {}, evoq.el("span", { class: "status " + r.status }, r.status)),
      evoq.el("td", {}, progressText(r)),
      evoq.el("td", {}, `v${r.parent_version_id ?? "?"} → ${r.candidate_version_id ? "v" + r.candidate_version_id : "–"}`),
      evoq.el("td", {}, `${r.trigger} (${r.actor})`),
      evoq.el("td", {}, evoq.when(r.started_at || r.created_at)))));
    if (!list.items.length) {
      body.replaceChildren(evoq.el("tr", {}, evoq.el("td", { colspan: 6, class: "muted" }, "no rounds yet")));
    }
    if (list.items.some((r) => ACTIVE.includes(r.status))) setTimeout(() => evoq.guard(load), 2000);
    scheduleEstimate(0);
  }

  function value(input, raw) {
    const kind = input.dataset.kind;
    return kind === "integer" ? Number.parseInt(raw, 10) : kind === "number" ? Number(raw) : raw;
  }

  // The scalar fields: only those whose value differs from the schema default are sent.
  function scalars() {
    const out = {};
    for (const input of form.querySelectorAll("[data-field]")) {
      const raw = input.value.trim();
      const initial = input.tagName === "SELECT"
        ? (input.querySelector("option[selected]") || input.options[0]).value
        : input.defaultValue.trim();
      if (raw === initial) continue;
      if (raw === "" && input.dataset.nullable === "true") continue;
      out[input.dataset.field] = value(input, raw);
    }
    return out;
  }

  // The augment section as the API's object (every field, so the request says what ran).
  function augmentConfig() {
    const out = {};
    for (const node of augment.querySelectorAll("[data-augment]")) {
      out[node.dataset.augment] = node.dataset.kind === "choices"
        ? Array.from(node.querySelectorAll("input:checked"), (box) => box.value)
        : value(node, node.value.trim());
    }
    return out;
  }

  function config() {
    const out = scalars();
    if (augmentOn.checked) out.augment = augmentConfig();
    return out;
  }

  // POST /v1/admin/rounds/estimate: the estimate, or null where this server has none (404).
  async function fetchEstimate(cfg) {
    try {
      return await evoq.api("/v1/admin/rounds/estimate", { method: "POST", json: { config: cfg } });
    } catch (exc) {
      if (exc.status === 404 || exc.status === 405) return null;
      throw exc;
    }
  }

  function estimateText(est) {
    const stages = (est.stages || []).map((s) => `${s.stage} ${evoq.duration(s.seconds)}`).join(" · ");
    return `Estimated ${evoq.duration(est.seconds)} on ${est.device}` + (stages ? ` (${stages})` : "");
  }

  function showEstimate(est) {
    if (est === null) {
      estimateBox.className = "estimate muted";
      estimateBox.replaceChildren("This server gives no estimate of a round's time.");
      return;
    }
    estimateBox.className = "estimate" + (est.warning ? " warn" : "");
    estimateBox.replaceChildren(...[
      evoq.el("strong", { id: "estimate-total" }, estimateText(est)),
      est.warning ? evoq.el("p", { id: "estimate-warning" }, est.warning) : null,
      evoq.el("small", { class: "muted" }, "an estimate from a FLOP count (evoq plan), not a measurement"),
    ].filter(Boolean));
  }

  // Refresh the estimate shortly after the config changes; a later answer wins over an older.
  function scheduleEstimate(delay = 300) {
    clearTimeout(estimateTimer);
    if (!isAdmin()) return;
    estimateTimer = setTimeout(async () => {
      const seq = ++estimateSeq;
      try {
        const est = await fetchEstimate(config());
        if (seq === estimateSeq) showEstimate(est);
      } catch (exc) {
        if (seq !== estimateSeq) return;
        estimateBox.className = "estimate invalid";
        estimateBox.replaceChildren(`No estimate: ${exc.message}`);
      }
    }, delay);
  }

  function hideConfirm() {
    pending = null;
    confirmBox.hidden = true;
    document.getElementById("round-start").disabled = false;
  }

  function askConfirm(cfg, est) {
    pending = cfg;
    document.getElementById("round-confirm-text").textContent = est
      ? `${est.warning} Start this round anyway?`
      : "This server gives no estimate of the round's time. Start it anyway?";
    confirmBox.hidden = false;
    document.getElementById("round-start").disabled = true;
    document.getElementById("round-confirm-cancel").focus();
  }

  async function start(cfg) {
    const created = await evoq.api("/v1/admin/rounds", { method: "POST", json: { config: cfg } });
    // The round page shows the estimate the round started with (this browser session only).
    if (created.estimate) sessionStorage.setItem(`evoq-round-estimate-${created.id}`, `${evoq.duration(created.estimate.seconds)} on ${created.estimate.device}`);
    window.location.href = `/console/rounds/${created.id}`;
  }

  augmentOn.addEventListener("change", () => { augment.disabled = !augmentOn.checked; });
  for (const kind of ["input", "change"]) {
    form.addEventListener(kind, () => {
      if (pending) hideConfirm();
      scheduleEstimate();
    });
  }

  // Start: a fresh estimate first; a warning (or no estimate at all) asks to confirm.
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    evoq.guard(async () => {
      const cfg = config();
      const est = await fetchEstimate(cfg);
      showEstimate(est);
      if (est === null || est.warning) askConfirm(cfg, est);
      else await start(cfg);
    });
  });
  document.getElementById("round-confirm-start").addEventListener("click", () => evoq.guard(async () => {
    const cfg = pending;
    hideConfirm();
    if (cfg) await start(cfg);
  }));
  document.getElementById("round-confirm-cancel").addEventListener("click", hideConfirm);

  evoq.ready.then(() => {
    document.addEventListener("evoq:access", () => evoq.guard(load));
    evoq.guard(load);
  });
})();
