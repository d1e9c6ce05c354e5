"use strict";
(() => {
  const PAGE = 20;
  let offset = 0;

  async function loadStats() {
    const s = await evoq.api("/v1/corpus");
    const rows = [
      ["images", s.images], ["size", evoq.bytes(s.bytes)], ["kept out of training", s.train_opt_out],
      ["new since the last round", s.since_last_round], ["last round", evoq.when(s.last_round_at)],
    ];
    document.getElementById("corpus-stats").replaceChildren(
      ...rows.flatMap(([k, v]) => [evoq.el("dt", {}, k), evoq.el("dd", { "data-stat": k }, v)]));
  }

  let thumbUrls = [];

  // Writing needs a token once the server has one configured (what whoami says); without
  // whoami (an older server) the buttons stay on and the API answers.
  const allowed = (what) => !evoq.access.known || Boolean(evoq.access.can[what]);
  const needs = (what) => (allowed(what) ? null : `needs a token that may ${what}: enter one above`);

  function thumbnail(img) {
    const box = evoq.el("img", { class: "thumb", alt: img.original_name || img.sha256.slice(0, 12), width: 64, height: 64 });
    evoq.objectUrl(`/v1/corpus/images/${img.sha256}/thumbnail?size=128`)
      .then((url) => { thumbUrls.push(url); box.src = url; })
      .catch(() => { box.alt = "no preview"; box.classList.add("missing"); });
    return box;
  }

  async function loadPage() {
    const page = await evoq.api(`/v1/corpus/images?offset=${offset}&limit=${PAGE}`);
    const body = document.querySelector("#images tbody");
    for (const url of thumbUrls) URL.revokeObjectURL(url);
    thumbUrls = [];
    body.replaceChildren(...page.items.map((img) => evoq.el("tr", { "data-sha": img.sha256 },
      evoq.el("td", {}, thumbnail(img)),
      evoq.el("td", { class: "mono", title: img.sha256 }, img.sha256.slice(0, 12)),
      evoq.el("td", {}, img.original_name || "–"),
      evoq.el("td", {}, img.format),
      evoq.el("td", {}, `${img.width}×${img.height}`),
      evoq.el("td", {}, evoq.bytes(img.bytes)),
      evoq.el("td", {}, evoq.when(img.created_at)),
      evoq.el("td", {}, evoq.el("label", { title: needs("delete") }, evoq.el("input", {
        type: "checkbox", class: "train-toggle", checked: !img.train_opt_out, disabled: !allowed("delete"),
        onchange: (e) => toggle(img.sha256, !e.target.checked),
      }), " train")),
      evoq.el("td", {}, evoq.el("button", {
        class: "delete", disabled: !allowed("delete"), title: needs("delete"), onclick: () => remove(img.sha256),
      }, "Delete")))));
    const last = Math.min(page.total, offset + page.items.length);
    document.getElementById("page-info").textContent =
      page.total ? `${offset + 1}–${last} of ${page.total}` : "no images yet";
    document.getElementById("page-prev").disabled = offset === 0;
    document.getElementById("page-next").disabled = last >= page.total;
    const upload = document.getElementById("upload-submit");
    upload.disabled = !allowed("upload");
    upload.title = needs("upload") || "";
  }

  const refresh = () => evoq.guard(async () => { await loadStats(); await loadPage(); });

  const toggle = (sha, optOut) => evoq.guard(async () => {
    await evoq.api(`/v1/corpus/images/${sha}`, { method: "PATCH", json: { train_opt_out: optOut } });
    await loadStats();
  });

  const remove = (sha) => evoq.guard(async () => {
    await evoq.api(`/v1/corpus/images/${sha}`, { method: "DELETE" });
    await refresh();
  });

  // Split a selection under the server's limits (each zip counts as one file here; the server
  // counts its members and says so if an archive is too large for one request).
  function batches(files, limits) {
    const out = [];
    let current = [], size = 0;
    const budget = limits.max_request_bytes - 65536;
    for (const file of files) {
      if (current.length && (size + file.size > budget || current.length >= limits.max_files_per_request)) {
        out.push(current);
        current = [];
        size = 0;
      }
      current.push(file);
      size += file.size;
    }
    if (current.length) out.push(current);
    return out;
  }

  function send(batch, optOut, onProgress) {
    return new Promise((resolve, reject) => {
      const form = new FormData();
      for (const file of batch) form.append("files", file, file.name);
      form.append("train_opt_out", optOut ? "true" : "false");
      const xhr = new XMLHttpRequest();
      xhr.open("POST", "/v1/corpus/images");
      if (evoq.token()) xhr.setRequestHeader("Authorization", "Bearer " + evoq.token());
      xhr.upload.addEventListener("progress", (e) => { if (e.lengthComputable) onProgress(e.loaded / e.total); });
      xhr.addEventListener("load", () => {
        let body = null;
        try { body = JSON.parse(xhr.responseText); } catch (_exc) { body = null; }
        // All files rejected is a 4xx that still lists each file's result.
        if (body && Array.isArray(body.results)) resolve(body);
        else reject(evoq.apiError(xhr.status, body, xhr.responseText));
      });
      xhr.addEventListener("error", () => reject(new Error("server unreachable")));
      xhr.send(form);
    });
  }

  function showResults(results) {
    const table = document.getElementById("upload-results");
    table.querySelector("tbody").replaceChildren(...results.map((r) => evoq.el("tr", { class: r.status },
      evoq.el("td", {}, r.filename),
      evoq.el("td", { class: "status-" + r.status }, r.status),
      evoq.el("td", { class: "mono" }, r.duplicate_of ? `${(r.sha256 || "").slice(0, 12)} = ${r.duplicate_of}` : (r.sha256 || "").slice(0, 12)),
      evoq.el("td", {}, r.reason ? `${r.reason}: ${r.detail || ""}` : ""))));
    table.hidden = false;
  }

  document.getElementById("upload-form").addEventListener("submit", (event) => {
    event.preventDefault();
    evoq.guard(async () => {
      const files = Array.from(document.getElementById("upload-files").files);
      if (!files.length) throw new Error("pick images or .zip archives first");
      const optOut = document.getElementById("upload-optout").checked;
      const bar = document.getElementById("upload-progress");
      const limits = await evoq.api("/v1/corpus/limits");
      const groups = batches(files, limits);
      const results = [];
      bar.hidden = false;
      bar.value = 0;
      for (const [i, group] of groups.entries()) {
        const body = await send(group, optOut, (f) => { bar.value = (100 * (i + f)) / groups.length; });
        results.push(...body.results);
        showResults(results);
      }
      bar.value = 100;
      const count = (s) => results.filter((r) => r.status === s).length;
      document.getElementById("upload-summary").textContent =
        `stored ${count("stored")}, duplicates ${count("duplicate")}, rejected ${count("rejected")}`;
      await loadStats();
      offset = 0;
      await loadPage();
    });
  });

  document.getElementById("page-prev").addEventListener("click", () => { offset = Math.max(0, offset - PAGE); refresh(); });
  document.getElementById("page-next").addEventListener("click", () => { offset += PAGE; refresh(); });
  // Once the token's rights are known; again whenever another token is entered.
  evoq.ready.then(() => {
    document.addEventListener("evoq:access", refresh);
    refresh();
  });
})();
