"use strict";
(() => {
  // Bookkeeping numbers, not measurements of the model.
  const NOT_METRICS = new Set(["offline_round", "round", "holdout_pairs", "n"]);

  // Metrics worth a plot across versions: numbers that at least two versions report.
  function numericKeys(versions) {
    const counts = {};
    for (const v of versions) {
      for (const [k, value] of Object.entries(v.metrics || {})) {
        if (typeof value === "number" && isFinite(value) && !NOT_METRICS.has(k)) counts[k] = (counts[k] || 0) + 1;
      }
    }
    return Object.keys(counts).filter((k) => counts[k] >= 2).sort().slice(0, 12);
  }

  function summary(metrics) {
    return Object.entries(metrics || {})
      .filter(([k, v]) => typeof v === "number" && !NOT_METRICS.has(k))
      .slice(0, 6)
      .map(([k, v]) => `${k} ${evoq.num(v)}`)
      .join(" · ");
  }

  function node(version, children) {
    const kids = children[version.id] || [];
    return evoq.el("li", { "data-version": version.id },
      evoq.el("div", { class: "version" + (version.active ? " active" : "") },
        evoq.el("strong", {}, `v${version.id}`), " ",
        evoq.el("span", { class: "status " + version.status }, version.status),
        version.active ? evoq.el("span", { class: "badge" }, "serving") : null,
        version.round_id
          ? evoq.el("a", { href: `/console/rounds/${version.round_id}` }, ` round ${version.round_id}`)
          : evoq.el("span", { class: "muted" }, " ", version.note || ""),
        evoq.el("span", { class: "muted" }, " · ", evoq.when(version.created_at)),
        version.active ? null : evoq.el("button", { class: "activate", onclick: () => activate(version.id) }, "Activate"),
        evoq.el("div", { class: "metrics muted" }, summary(version.metrics))),
      kids.length ? evoq.el("ul", {}, ...kids.map((k) => node(k, children))) : null);
  }

  async function load() {
    const data = await evoq.api("/v1/models");
    document.getElementById("active-version").textContent =
      data.active_version ? `v${data.active_version}` : "nothing active";
    const children = {};
    const roots = [];
    for (const v of data.versions) {
      if (v.parent_id === null) roots.push(v);
      else (children[v.parent_id] = children[v.parent_id] || []).push(v);
    }
    document.getElementById("lineage").replaceChildren(evoq.el("ul", {}, ...roots.map((r) => node(r, children))));
    document.querySelector("#activations tbody").replaceChildren(...data.activations.map((a) => evoq.el("tr", {},
      evoq.el("td", {}, evoq.when(a.at)), evoq.el("td", {}, `v${a.version_id}`),
      evoq.el("td", {}, a.previous_version_id ? `v${a.previous_version_id}` : "–"),
      evoq.el("td", {}, a.actor), evoq.el("td", {}, a.reason))));
    const keys = numericKeys(data.versions);
    const ordered = [...data.versions].sort((a, b) => a.id - b.id);
    const plotBox = document.getElementById("metrics-plot");
    plotBox.replaceChildren(...(keys.length
      ? keys.map((k) => evoq.plot(k, [{ name: k,
          points: ordered.filter((v) => typeof (v.metrics || {})[k] === "number").map((v) => [v.id, v.metrics[k]]) }],
          { xLabel: "version", width: 300, height: 180, integerX: true }))
      : [evoq.el("p", { class: "muted" }, "no metric is reported by two versions yet")]));
  }

  const activate = (versionId) => evoq.guard(async () => {
    await evoq.api(`/v1/admin/models/${versionId}/activate`, { method: "POST", json: { reason: "console" } });
    await load();
  });

  document.getElementById("rollback").addEventListener("click", () => evoq.guard(async () => {
    await evoq.api("/v1/admin/rollback", { method: "POST", json: { reason: "console rollback" } });
    await load();
  }));
  evoq.guard(load);
})();
