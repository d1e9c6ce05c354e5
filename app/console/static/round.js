"use strict";
(() => {
  const id = document.getElementById("round-view").dataset.round;
  const ACTIVE = ["pending", "voting", "training", "evaluating"];
  const CURVES = [["reward_mean", "reward mean"], ["kl", "KL"], ["parse_rate", "parse rate"], ["loss", "loss"]];
  let timer = null;
  const estimate = sessionStorage.getItem(`evoq-round-estimate-${id}`);

  function bar(barId, textId, done, total) {
    const node = document.getElementById(barId);
    node.max = total || 1;
    node.value = done || 0;
    document.getElementById(textId).textContent = total ? `${done || 0} / ${total}` : "–";
  }

  function curves(perStep) {
    const box = document.getElementById("curves");
    const present = CURVES.filter(([key]) => (perStep[key] || []).length);
    if (!present.length) return;
    box.replaceChildren(...present.map(([key, title]) => evoq.plot(title,
      [{ name: title, points: perStep[key].map((v, i) => [i + 1, v]) }], { xLabel: "step" })));
  }

  function gate(g) {
    const decision = document.getElementById("gate-decision");
    if (!g || !g.checks) {
      decision.textContent = "not evaluated yet";
      return;
    }
    decision.textContent = `${g.passed ? "passed" : "failed"} · policy ${g.policy} · decision: ${g.decision}` +
      (g.reasons && g.reasons.length ? ` · ${g.reasons.join("; ")}` : "");
    document.querySelector("#gate tbody").replaceChildren(...g.checks.map((c) => evoq.el("tr", { class: c.passed ? "pass" : "fail" },
      evoq.el("td", {}, c.name),
      evoq.el("td", {}, c.passed ? "✔ yes" : "✘ no"),
      evoq.el("td", {}, evoq.fmt(c.value)),
      evoq.el("td", {}, evoq.fmt(c.threshold)),
      evoq.el("td", {}, c.detail))));
  }

  async function load() {
    const r = await evoq.api(`/v1/admin/rounds/${id}`);
    const status = document.getElementById("round-status");
    status.textContent = r.status;
    status.className = "status " + r.status;
    const p = r.progress || {};
    bar("votes-bar", "votes-text", p.pairs_voted, p.pairs_total);
    bar("train-bar", "train-text", p.train_step, p.train_max_steps);
    document.getElementById("round-error").textContent = r.error || "";
    document.getElementById("round-times").textContent =
      `created ${evoq.when(r.created_at)} · started ${evoq.when(r.started_at)} · finished ${evoq.when(r.finished_at)}` +
      (r.candidate_version_id ? ` · candidate v${r.candidate_version_id}` : "") +
      (estimate ? ` · estimated ${estimate} when started` : "");
    document.getElementById("round-cancel").disabled = !ACTIVE.includes(r.status) || r.cancel_requested;
    curves(p.train_per_step || {});
    gate(r.gate);
    document.getElementById("round-config").replaceChildren(...Object.entries(r.config).flatMap(([k, v]) =>
      [evoq.el("dt", {}, k), evoq.el("dd", {}, v === null ? "–" : typeof v === "object" ? JSON.stringify(v) : String(v))]));
    clearTimeout(timer);
    if (ACTIVE.includes(r.status)) timer = setTimeout(poll, 1000);
  }

  const poll = () => evoq.guard(load);

  document.getElementById("round-cancel").addEventListener("click", () => evoq.guard(async () => {
    await evoq.api(`/v1/admin/rounds/${id}/cancel`, { method: "POST" });
    await load();
  }));
  evoq.ready.then(() => {
    document.addEventListener("evoq:token", poll);
    const admin = evoq.access.known ? evoq.access.can.admin : evoq.token();
    if (!admin) evoq.showError(new Error("Rounds are admin data: enter the admin token above."));
    else poll();
  });
})();
