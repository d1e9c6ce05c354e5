"use strict";
(() => {
  const input = document.getElementById("score-files");
  const drop = document.getElementById("drop");
  const status = document.getElementById("score-status");
  const results = document.getElementById("score-results");
  let files = [];

  const pick = (list) => {
    files = Array.from(list || []);
    status.textContent = files.length ? `${files.length} image(s) selected` : "";
  };
  input.addEventListener("change", () => pick(input.files));
  drop.addEventListener("dragover", (event) => { event.preventDefault(); drop.classList.add("over"); });
  drop.addEventListener("dragleave", () => drop.classList.remove("over"));
  drop.addEventListener("drop", (event) => {
    event.preventDefault();
    drop.classList.remove("over");
    pick(event.dataTransfer.files);
  });

  const card = (file, result) => {
    const texts = result.explanations || [];
    return evoq.el("article", { class: "card", "data-filename": result.filename },
      evoq.el("img", { src: URL.createObjectURL(file), alt: result.filename }),
      evoq.el("h3", {}, result.filename),
      evoq.el("p", { class: "score" }, evoq.num(result.score, 2), " ",
        evoq.el("span", { class: "level " + (result.level || "none") }, result.level || "no score")),
      evoq.el("p", { class: "muted" },
        `raw ${evoq.num(result.raw_score, 2)} · ` +
        (result.scale == null ? "uncalibrated · " : `scale of v${result.scale} · `) +
        `std ${evoq.num(result.std, 2)} · ${result.valid}/${result.n} parsed · ` +
        `${result.mode}${result.tokens ? ` (${result.tokens} tokens)` : ""} · v${result.model_version}`),
      texts.length ? evoq.el("details", {}, evoq.el("summary", {}, "reasoning"),
        ...texts.map((t) => evoq.el("pre", {}, t))) : null);
  };

  document.getElementById("score-form").addEventListener("submit", (event) => {
    event.preventDefault();
    // Old cards go first: after a failure only the error banner may show.
    results.replaceChildren();
    evoq.guard(async () => {
      if (!files.length) throw new Error("pick one or more images first");
      const form = new FormData();
      for (const file of files) form.append("files", file, file.name);
      form.append("mode", document.getElementById("score-mode").value);
      form.append("samples", document.getElementById("score-samples").value);
      form.append("explain", document.getElementById("score-explain").checked ? "true" : "false");
      status.textContent = "scoring…";
      try {
        const body = await evoq.api("/v1/score", { method: "POST", body: form });
        results.replaceChildren(...body.results.map((r, i) => card(files[i], r)));
        status.textContent = `${body.results.length} scored in ${Math.round(body.elapsed_ms)} ms`;
      } catch (exc) {
        status.textContent = "";
        results.replaceChildren();
        throw exc;
      }
    });
  });
})();
