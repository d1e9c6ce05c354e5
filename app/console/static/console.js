// Shared by every console page: the API token (browser session only) and what it allows, calls
// to the JSON API, the error banner, small DOM helpers, number formats and an SVG line plot.
"use strict";

const TOKEN_KEY = "evoq-admin-token";

const evoq = {
  token() {
    return sessionStorage.getItem(TOKEN_KEY) || "";
  },

  // What the entered token allows, from GET /v1/auth/whoami: {role, can, known, rejected}.
  // `known` is false where the server has no whoami (then only "a token is set" is known).
  access: { role: "anonymous", can: {}, known: false, rejected: false },

  // The bytes behind an API path as an object URL (an <img src> cannot send the token).
  async objectUrl(path) {
    const headers = evoq.token() ? { Authorization: "Bearer " + evoq.token() } : {};
    const response = await fetch(path, { headers });
    if (!response.ok) throw evoq.apiError(response.status, null, "");
    return URL.createObjectURL(await response.blob());
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

  // A metric for reading: 3 significant digits, exponent form for tiny or huge magnitudes.
  fmt(value) {
    if (typeof value !== "number" || !isFinite(value)) return "–";
    const abs = Math.abs(value);
    if (abs !== 0 && (abs < 1e-3 || abs >= 1e6)) return value.toExponential(2);
    if (abs >= 100) return String(Math.round(value));
    return String(Number(value.toPrecision(3)));
  },

  duration(seconds) {
    if (typeof seconds !== "number" || !isFinite(seconds)) return "–";
    if (seconds >= 2 * 86400) return (seconds / 86400).toFixed(1) + " days";
    if (seconds >= 3600) return (seconds / 3600).toFixed(1) + " h";
    if (seconds >= 60) return (seconds / 60).toFixed(1) + " min";
    return seconds.toFixed(1) + " s";
  },

  when(iso) {
    return iso ? new Date(iso).toLocaleString() : "–";
  },

  bytes(n) {
    if (n < 1024) return n + " B";
    if (n < 1024 * 1024) return (n / 1024).toFixed(1) + " KiB";
    return (n / 1024 / 1024).toFixed(1) + " MiB";
  },

  // Round axis ticks (steps of 1, 2 or 5 x 10^k) covering [lo, hi], and the range they span.
  ticks(lo, hi, count = 4) {
    const raw = (hi - lo) / count;
    const power = 10 ** Math.floor(Math.log10(raw));
    const f = raw / power;
    const step = (f < 1.5 ? 1 : f < 3 ? 2 : f < 7 ? 5 : 10) * power;
    const first = Math.floor(lo / step + 1e-9) * step;
    const last = Math.ceil(hi / step - 1e-9) * step;
    const values = [];
    for (let v = first; v <= last + step / 2; v += step) values.push(Math.abs(v) < step / 1e6 ? 0 : v);
    return { values, step, lo: first, hi: last };
  },

  // A tick label: as many decimals as the step needs; exponent form for tiny or huge values.
  tickLabel(value, step, magnitude) {
    if (value === 0) return "0";
    if (magnitude < 1e-3 || magnitude >= 1e6) {
      const digits = Math.max(0, Math.floor(Math.log10(magnitude)) - Math.floor(Math.log10(step)));
      return value.toExponential(Math.min(digits, 4));
    }
    return value.toFixed(Math.min(8, Math.max(0, -Math.floor(Math.log10(step) + 1e-9))));
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
    add("text", { x: width / 2, y: 14, "text-anchor": "middle", class: "plot-title" }, title);
    if (!points.length) {
      add("text", { x: width / 2, y: height / 2, "text-anchor": "middle" }, "no data");
      return svg;
    }
    const xs = points.map((p) => p[0]);
    const ys = points.map((p) => p[1]);
    let [x0, x1] = [Math.min(...xs), Math.max(...xs)];
    let [y0, y1] = [Math.min(...ys), Math.max(...ys)];
    // One x value (a one-step curve, one version): half a unit each side, one tick.
    if (x0 === x1) { x0 -= 0.5; x1 += 0.5; }
    // One y value: a band of 10% of its size around it, not a fixed ±0.5.
    if (y0 === y1) {
      const half = y0 === 0 ? 1 : Math.abs(y0) * 0.05;
      y0 -= half;
      y1 += half;
    }
    const yTicks = evoq.ticks(y0, y1);
    [y0, y1] = [yTicks.lo, yTicks.hi];
    const magnitude = Math.max(Math.abs(y0), Math.abs(y1));
    const yLabels = yTicks.values.map((v) => evoq.tickLabel(v, yTicks.step, magnitude));
    // The left margin fits the longest label (10 px font: about 6 px per character).
    const pad = { l: 12 + 6 * Math.max(...yLabels.map((t) => t.length)), r: 12, t: 22, b: 30 };
    const sx = (x) => pad.l + ((x - x0) / (x1 - x0)) * (width - pad.l - pad.r);
    const sy = (y) => height - pad.b - ((y - y0) / (y1 - y0)) * (height - pad.t - pad.b);
    yTicks.values.forEach((v, i) => {
      add("line", { x1: pad.l, y1: sy(v), x2: width - pad.r, y2: sy(v), class: "grid-line" });
      add("text", { x: pad.l - 4, y: sy(v) + 3.5, "text-anchor": "end", class: "tick" }, yLabels[i]);
    });
    add("line", { x1: pad.l, y1: height - pad.b, x2: width - pad.r, y2: height - pad.b, class: "axis" });
    add("line", { x1: pad.l, y1: pad.t, x2: pad.l, y2: height - pad.b, class: "axis" });
    const lowX = Math.min(...xs), highX = Math.max(...xs);
    let xTicks;
    if (lowX === highX) xTicks = [lowX];
    else if (integerX && highX - lowX <= 20) xTicks = Array.from({ length: highX - lowX + 1 }, (_, i) => lowX + i);
    else xTicks = evoq.ticks(lowX, highX, 5).values.filter((x) => x >= lowX && x <= highX);
    for (const x of xTicks) {
      add("text", { x: sx(x), y: height - pad.b + 14, "text-anchor": "middle", class: "tick" }, String(Number(x.toPrecision(4))));
    }
    add("text", { x: width / 2, y: height - 3, "text-anchor": "middle", class: "tick" }, xLabel);
    series.forEach((s, i) => {
      const colour = `hsl(${(i * 67) % 360} 65% 42%)`;
      const pts = s.points.filter((p) => isFinite(p[0]) && isFinite(p[1]));
      if (pts.length > 1) {
        add("polyline", { points: pts.map((p) => `${sx(p[0])},${sy(p[1])}`).join(" "), fill: "none", stroke: colour, "stroke-width": 2 });
      }
      for (const p of pts) {
        const dot = add("circle", { cx: sx(p[0]), cy: sy(p[1]), r: 3, fill: colour });
        const tip = document.createElementNS(ns, "title");
        tip.textContent = `${s.name} at ${xLabel || "x"} ${p[0]}: ${evoq.fmt(p[1])}`;
        dot.append(tip);
      }
      if (series.length > 1) {
        add("text", { x: pad.l + 8, y: pad.t + 12 + 13 * i, fill: colour, class: "legend" }, s.name);
      }
    });
    return svg;
  },
};

// The header's token box: keeps the token for this browser session and says what it allows.
const ABILITIES = [["admin", "start rounds"], ["upload", "upload"], ["delete", "delete images"]];

function describeAccess(access) {
  if (access.rejected) return "token rejected: read-only";
  if (!access.known) return evoq.token() ? "token set (this server does not say what it allows)" : "no token";
  const can = ABILITIES.filter(([key]) => access.can[key]).map(([, words]) => words);
  const who = access.role === "anonymous" ? "no token" : access.role;
  return can.length ? `${who}: can ${can.join(", ")}` : `${who}: read-only`;
}

async function loadAccess() {
  let access = { role: evoq.token() ? "unknown" : "anonymous", can: {}, known: false, rejected: false };
  try {
    const body = await evoq.api("/v1/auth/whoami");
    access = { role: body.role, can: body.can || {}, known: true, rejected: false };
  } catch (exc) {
    // 401/403: the token is wrong; 404: an older server without whoami; else: unreachable.
    if (exc.status === 401 || exc.status === 403) access.rejected = true;
  }
  evoq.access = access;
  return access;
}

function initToken() {
  const state = document.getElementById("token-state");
  const input = document.getElementById("token-input");
  const clear = document.getElementById("token-clear");
  const render = async () => {
    const on = Boolean(evoq.token());
    clear.hidden = !on;
    input.hidden = on;
    document.getElementById("token-save").hidden = on;
    state.textContent = "…";
    const access = await loadAccess();
    state.textContent = describeAccess(access);
    state.dataset.role = access.known ? access.role : "";
    state.className = access.rejected ? "rejected" : access.known ? "role-" + access.role : "";
    document.dispatchEvent(new Event("evoq:access"));
  };
  document.getElementById("token-form").addEventListener("submit", async (event) => {
    event.preventDefault();
    if (input.value.trim()) sessionStorage.setItem(TOKEN_KEY, input.value.trim());
    input.value = "";
    await render();
    document.dispatchEvent(new Event("evoq:token"));
  });
  clear.addEventListener("click", async () => {
    sessionStorage.removeItem(TOKEN_KEY);
    await render();
    document.dispatchEvent(new Event("evoq:token"));
  });
  evoq.ready = render();
}

initToken();
