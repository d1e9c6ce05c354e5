"use strict";
(() => {
  const ACTIVE = ["pending", "voting", "training", "evaluating"];

  function progressText(r) {
    const p = r.progress || {};
    const parts = [];
    if (p.pairs_total) parts.push(`votes ${p.pairs_voted || 0}/${p.pairs_total}`);
    if (p.train_max_steps) parts.push(`step ${p.train_step || 0}/${p.train_max_steps}`);
    return parts.join(" · ") || "–";
  }

  async function load() {
    const body = document.querySelector("#rounds tbody");
    if (!evoq.token()) {
      body.replaceChildren(evoq.el("tr", {}, evoq.el("td", { colspan: 6, class: "muted" },
        "Rounds are admin data: enter the admin token above.")));
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
  }

  // The config form: only fields whose value differs from the schema default are sent.
  function config() {
    const out = {};
    for (const input of document.querySelectorAll("#round-form [data-field]")) {
      const raw = input.value.trim();
      const initial = input.tagName === "SELECT"
        ? (input.querySelector("option[selected]") || input.options[0]).value
        : input.defaultValue.trim();
      if (raw === initial) continue;
      if (raw === "" && input.dataset.nullable === "true") continue;
      const kind = input.dataset.kind;
      const value = kind === "integer" ? Number.parseInt(raw, 10) : kind === "number" ? Number(raw) : raw;
      out[input.dataset.field] = value;
    }
    return out;
  }

  document.getElementById("round-form").addEventListener("submit", (event) => {
    event.preventDefault();
    evoq.guard(async () => {
      const created = await evoq.api("/v1/admin/rounds", { method: "POST", json: { config: config() } });
      window.location.href = `/console/rounds/${created.id}`;
    });
  });
  document.addEventListener("evoq:token", () => evoq.guard(load));
  evoq.guard(load);
})();
