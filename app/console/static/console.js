// Shared by every console page: the admin token (browser session only), calls to the JSON
// API, the error banner, small DOM helpers and an SVG line plot.
"use strict";

const TOKEN_KEY = "evoq-admin-token";

const evoq = {
  token() {
    return sessionStorage.getItem(TOKEN_KEY) || "";
  },

  // fetch a JSON API path; throws an Error carrying the API's `error: detail` message.
  async api(path, options = {}) {
    const headers = Object.assign({}, options.headers || {});
    if (evoq.token()) headers["Authorization"] = "Bearer " + evoq.token();
    if (options.json !== undefined) {
      headers["Content-Type"] = "application/json";
      options = Object.assign({}, options, { body: JSON.stringify(options.json) });
    }
    let response;
    try {
      response = await fetch(path, Object.assign({}, options, { headers }));
    } catch (exc) {
      throw new Error("server unreachable: " + exc.message);
    }
    if (response.status === 204) return null;
    const text = await response.text();
    let body = null;
    try { body = text ? JSON.parse(text) : null; } catch (_exc) { body = null; }
    if (!response.ok) throw evoq.apiError(response.status, body, text);
    return body;
  },

  apiError(status, body, text) {
    const message = body && body.error
      ? `${body.error}: ${body.detail || ""}${body.filename ? ` (${body.filename})` : ""}`
      : `HTTP ${status}: ${(text || "").slice(0, 300)}`;
    const error = new Error(message);
    error.status = status;
    error.body = body;
    return error;
  },

  showError(error) {
    const box = document.getElementById("error");
    box.textContent = error ? String(error.message || error) : "";
    box.hidden = !error;
  },

  // run an async action, showing its failure as the API's message
  async guard(action) {
    try {
      evoq.showError(null);
      return await action();
    } catch (exc) {
      evoq.showError(exc);
      return undefined;
    }
  },

  el(tag, attrs = {}, ...children) {
    const node = document.createElement(tag);
    for (const [key, value] of Object.entries(attrs)) {
      if (value === undefined || value === null || value === false) continue;
      if (key === "class") node.className = value;
      else if (key.startsWith("on")) node.addEventListener(key.slice(2), value);
      else node.setAttribute(key, value === true ? "" : value);
    }
    for (const child of children.flat()) {
      if (child === undefined || child === null) continue;
      node.append(child instanceof Node ? child : document.createTextNode(String(child)));
    }
    return node;
  },

  num(value, digits = 3) {
    return typeof value === "number" && isFinite(value) ? value.toFixed(digits) : "–";
  },

  when(iso) {
    return iso ? new Date(iso).toLocaleString() : "–";
  },

  bytes(n) {
    if (n < 1024) return n + " B";
    if (n < 1024 * 1024) return (n / 1024).toFixed(1) + " KiB";
    return (n / 1024 / 1024).toFixed(1) + " MiB";
  },

  // An SVG line plot: series = [{name, points: [[x, y], ...]}], one colour each.
  plot(title, series, { xLabel = "", width = 420, height = 220, integerX = false } = {}) {
    const ns = "http://www.w3.org/2000/svg";
    const svg = document.createElementNS(ns, "svg");
    svg.setAttribute("viewBox", `0 0 ${width} ${height}`);
    svg.setAttribute("class", "plot");
    svg.setAttribute("data-title", title);
    const add = (tag, attrs, text) => {
      const node = document.createElementNS(ns, tag);
      for (const [k, v] of Object.entries(attrs)) node.setAttribute(k, v);
      if (text !== undefined) node.textContent = text;
      svg.append(node);
      return node;
    };
    const points = series.flatMap((s) => s.points).filter((p) => isFinite(p[0]) && isFinite(p[1]));
    const pad = { l: 46, r: 10, t: 22, b: 30 };
    add("text", { x: width / 2, y: 14, "text-anchor": "middle", class: "plot-title" }, title);
    if (!points.length) {
      add("text", { x: width / 2, y: height / 2, "text-anchor": "middle" }, "no data");
      return svg;
    }
    let [x0, x1] = [Math.min(...points.map((p) => p[0])), Math.max(...points.map((p) => p[0]))];
    let [y0, y1] = [Math.min(...points.map((p) => p[1])), Math.max(...points.map((p) => p[1]))];
    if (x0 === x1) { x0 -= 1; x1 += 1; }
    if (y0 === y1) { y0 -= 0.5; y1 += 0.5; }
    const sx = (x) => pad.l + ((x - x0) / (x1 - x0)) * (width - pad.l - pad.r);
    const sy = (y) => height - pad.b - ((y - y0) / (y1 - y0)) * (height - pad.t - pad.b);
    add("line", { x1: pad.l, y1: height - pad.b, x2: width - pad.r, y2: height - pad.b, class: "axis" });
    add("line", { x1: pad.l, y1: pad.t, x2: pad.l, y2: height - pad.b, class: "axis" });
    for (const y of [y0, (y0 + y1) / 2, y1]) {
      add("text", { x: pad.l - 4, y: sy(y) + 4, "text-anchor": "end", class: "tick" }, y.toPrecision(3));
    }
    const xs = integerX && x1 - x0 <= 20
      ? Array.from({ length: Math.floor(x1) - Math.ceil(x0) + 1 }, (_, i) => Math.ceil(x0) + i)
      : [x0, x1];
    for (const x of xs) {
      add("text", { x: sx(x), y: height - pad.b + 14, "text-anchor": "middle", class: "tick" }, Number(x.toPrecision(4)));
    }
    add("text", { x: width / 2, y: height - 4, "text-anchor": "middle", class: "tick" }, xLabel);
    series.forEach((s, i) => {
      const colour = `hsl(${(i * 67) % 360} 65% 42%)`;
      const pts = s.points.filter((p) => isFinite(p[0]) && isFinite(p[1]));
      if (pts.length > 1) {
        add("polyline", { points: pts.map((p) => `${sx(p[0])},${sy(p[1])}`).join(" "), fill: "none", stroke: colour, "stroke-width": 2 });
      }
      for (const p of pts) add("circle", { cx: sx(p[0]), cy: sy(p[1]), r: 3, fill: colour });
      if (series.length > 1) {
        add("text", { x: pad.l + 8, y: pad.t + 12 + 13 * i, fill: colour, class: "legend" }, s.name);
      }
    });
    return svg;
  },
};

function initToken() {
  const state = document.getElementById("token-state");
  const input = document.getElementById("token-input");
  const clear = document.getElementById("token-clear");
  const render = () => {
    const on = Boolean(evoq.token());
    state.textContent = on ? "admin" : "read-only";
    state.className = on ? "admin" : "";
    clear.hidden = !on;
    input.hidden = on;
    document.getElementById("token-save").hidden = on;
  };
  document.getElementById("token-form").addEventListener("submit", (event) => {
    event.preventDefault();
    if (input.value.trim()) sessionStorage.setItem(TOKEN_KEY, input.value.trim());
    input.value = "";
    render();
    document.dispatchEvent(new Event("evoq:token"));
  });
  clear.addEventListener("click", () => {
    sessionStorage.removeItem(TOKEN_KEY);
    render();
    document.dispatchEvent(new Event("evoq:token"));
  });
  render();
}

initToken();
