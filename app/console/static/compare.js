"use strict";
(() => {
  const a = document.getElementById("compare-a");
  const b = document.getElementById("compare-b");
  document.getElementById("compare-form").addEventListener("submit", (event) => {
    event.preventDefault();
    // The old result goes first: after a failure only the error banner may show.
    const result = document.getElementById("compare-result");
    result.hidden = true;
    for (const id of ["compare-img-a", "compare-img-b"]) document.getElementById(id).removeAttribute("src");
    for (const id of ["compare-p", "compare-votes-text"]) document.getElementById(id).textContent = "";
    document.getElementById("compare-bar").style.width = "0";
    evoq.guard(async () => {
      if (!a.files.length || !b.files.length) throw new Error("pick both images first");
      const form = new FormData();
      form.append("files", a.files[0], a.files[0].name);
      form.append("files", b.files[0], b.files[0].name);
      form.append("mode", document.getElementById("compare-mode").value);
      form.append("votes", document.getElementById("compare-votes").value);
      const body = await evoq.api("/v1/compare", { method: "POST", body: form });
      document.getElementById("compare-img-a").src = URL.createObjectURL(a.files[0]);
      document.getElementById("compare-img-b").src = URL.createObjectURL(b.files[0]);
      document.getElementById("compare-p").textContent = evoq.num(body.p_first_better, 3);
      document.getElementById("compare-bar").style.width = `${100 * body.p_first_better}%`;
      document.getElementById("compare-votes-text").textContent = body.mode === "sampled"
        ? `votes: first ${body.votes_first}, second ${body.votes_second}, invalid ${body.invalid_votes} · v${body.model_version}`
        : body.mode === "deterministic"
          ? `answer-token probability at the box of each order's greedy reasoning · v${body.model_version}`
          : `exact answer-token probability (both orders) · v${body.model_version}`;
      result.hidden = false;
    });
  });
})();
