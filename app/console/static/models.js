"use strict";
(() => {
  // Bookkeeping numbers, not measurements of the model.
  const NOT_METRICS = new Set(["offline_round", "round", "holdout_pairs", "n"]);

  const CHOSEN_KEY = "evoq-models-metrics";

  // The headline plots, in this order: SRCC, accuracy, parse rate, score spread. Known names
  // first, then any other name of the same kind (e.g. a probe set's SRCC).
  const HEADLINE = [
    [/^(?!parent_).*srcc/, ["srcc_sampled", "srcc_fast", "candidate_probe_srcc"]],
    [/^(?!parent_|pseudo_).*(_acc|accuracy)$/, ["candidate_holdout_accuracy", "candidate_holdout_compare_accuracy", "compare_acc"]],
    [/parse_rate/, ["parse_rate", "vote_parse_rate"]],
    [/score_std/, ["score_std"]],
  ];

  function rank(key) {
    const group = HEADLINE.findIndex(([pattern]) => pattern.test(key));
    if (group < 0) return [HEADLINE.length, 0, key];
    const known = HEADLINE[group][1].indexOf(key);
    return [group, known < 0 ? 99 : known, key];
  }

  function byRank(a, b) {
    const [ra, rb] = [rank(a), rank(b)];
    return ra[0] - rb[0] || ra[1] - rb[1] || (ra[2] < rb[2] ? -1 : ra[2] > rb[2] ? 1 : 0);
  }

  const isHeadline = (key) => rank(key)[0] < HEADLINE.length;

  // Every numeric metric any version reports, headline ones first.
  function numericKeys(versions) {
    const keys = new Set();
    for (const v of versions) {
      for (const [k, value] of Object.entries(v.metrics || {})) {
        if (typeof value === "number" && isFinite(value) && !NOT_METRICS.has(k)) keys.add(k);
      }
    }
    return [...keys].sort(byRank);
  }

  // The plotted metrics: the user's pick for this session, else the headline ones.
  function chosen(keys) {
    const saved = JSON.parse(sessionStorage.getItem(CHOSEN_KEY) || "null");
    return new Set(saved ? keys.filter((k) => saved.includes(k)) : keys.filter(isHeadline));
  }

  function summary(metrics) {
    return Object.keys(metrics || {})
      .filter((k) => typeof metrics[k] === "number" && !NOT_METRICS.has(k))
      .sort(byRank)
      .slice(0, 6)
      .map((k) => `${k} ${evoq.fmt(metrics[k])}`)
      .join(" · ");
  }

  function plots(versions) {
    const keys = numericKeys(versions);
    const picked = chosen(keys);
    const ordered = [...versions].sort((a, b) => a.id - b.id);
    const picker = document.getElementById("metrics-picker");
    picker.replaceChildren(...keys.map((k) => evoq.el("label", { class: isHeadline(k) ? "headline" : "" },
      evoq.el("input", { type: "checkbox", value: k, checked: picked.has(k), onchange: () => {
        const now = Array.from(picker.querySelectorAll("input:checked"), (box) => box.value);
        sessionStorage.setItem(CHOSEN_KEY, JSON.stringify(now));
        plots(versions);
      } }), " ", k)));
    const shown = keys.filter((k) => picked.has(k));
    document.getElementById("metrics-plot").replaceChildren(...(shown.length
      ? shown.map((k) => evoq.plot(k, [{ name: k,
          points: ordered.filter((v) => typeof (v.metrics || {})[k] === "number").map((v) => [v.id, v.metrics[k]]) }],
          { xLabel: "version", width: 300, height: 180, integerX: true }))
      : [evoq.el("p", { class: "muted" }, keys.length ? "no metric picked" : "no version reports a metric yet")]));
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
    plots(data.versions);
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
