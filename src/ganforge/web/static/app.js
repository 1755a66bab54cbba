// The ganforge page: plain browser JavaScript, no libraries, talking to the JSON routes of server.py.
"use strict";

const $ = (id) => document.getElementById(id);
const state = { models: [], limits: {}, current: null, directions: {}, edit: null };

function el(tag, attrs, children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs || {})) {
    if (key === "text") node.textContent = value;
    else node.setAttribute(key, value);
  }
  for (const child of children || []) node.appendChild(child);
  return node;
}

function svg(tag, attrs) {
  const node = document.createElementNS("http://www.w3.org/2000/svg", tag);
  for (const [key, value] of Object.entries(attrs || {})) node.setAttribute(key, value);
  return node;
}

async function api(path, options) {
  const response = await fetch(path, options);
  let body;
  try {
    body = await response.json();
  } catch (e) {
    throw new Error(`the server answered ${response.status} without a readable reply`);
  }
  if (!response.ok) throw new Error(body.error || `the server answered ${response.status}`);
  return body;
}

function postJSON(path, payload) {
  return api(path, { method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify(payload) });
}

function message(panel, text) {
  const box = panel.querySelector(".message");
  box.textContent = text || "";
  box.hidden = !text;
}

// Runs `task` for the latest request only: while one is in flight, further calls just mark it stale, and
// one more run follows with the newest inputs. A dragged slider thus never floods the server's queue.
function latestOnly(task) {
  let running = false, again = false;
  const go = async () => {
    if (running) { again = true; return; }
    running = true;
    try { await task(); } finally {
      running = false;
      if (again) { again = false; go(); }
    }
  };
  return go;
}

function base() { return `/api/models/${state.current.index}`; }

function fillClasses(select, classes, allLabel) {
  select.replaceChildren(el("option", { value: "", text: allLabel }));
  classes.forEach((name, i) => select.appendChild(el("option", { value: String(i), text: name })));
}

function show(selector, visible) {
  document.querySelectorAll(selector).forEach((node) => { node.hidden = !visible; });
}

// --- models ------------------------------------------------------------------------------------------
function renderModelList() {
  const nav = $("models");
  nav.replaceChildren();
  for (const m of state.models) {
    const button = el("button", { type: "button", "data-index": String(m.index), class: "model" }, [
      el("strong", { text: m.name }),
      el("span", { text: `${m.model} · step ${m.step}${m.data ? " · " + m.data : ""}` }),
    ]);
    button.addEventListener("click", () => selectModel(m.index));
    nav.appendChild(button);
  }
}

function selectModel(index) {
  const m = state.models[index];
  state.current = m;
  document.querySelectorAll("#models .model").forEach((b) => b.classList.toggle("active", b.dataset.index === String(index)));
  const caps = m.capabilities;
  const kind = caps.image_to_image ? "image to image" : caps.classes ? `class-conditional, ${m.classes.length} classes` : "unconditional";
  const shape = (size, channels) => `${size}×${size} ${channels === 1 ? "grey" : "colour"}`;
  let images = shape(m.size, m.channels);
  if (caps.translate && shape(m.size_b, m.channels_b) !== images) images += ` ↔ ${shape(m.size_b, m.channels_b)}`;
  $("model-head").replaceChildren(
    el("h2", { text: m.name }),
    el("p", { text: `${m.model} (${kind}) · ${images} · trained ${m.step} steps on ${m.data || "?"}` }),
  );
  for (const id of ["generate", "interpolate", "mix", "translate", "discriminate", "project", "report"]) {
    const panel = $(`panel-${id}`);
    panel.querySelectorAll("img").forEach((img) => img.removeAttribute("src"));
    message(panel, "");
  }
  $("panel-generate").hidden = !caps.generate;
  $("panel-interpolate").hidden = !caps.interpolate;
  $("panel-mix").hidden = !caps.mix;
  $("panel-translate").hidden = !caps.image_to_image;
  $("panel-discriminate").hidden = !caps.discriminate;
  $("panel-project").hidden = !caps.latent;
  $("panel-report").hidden = !m.report;
  show(".needs-classes", caps.classes);
  show(".needs-truncation", caps.truncation);
  show(".needs-conditional-d", caps.judge_as_class);
  for (const id of ["generate-class", "interp-class", "mix-class"]) fillClasses($(id), m.classes, "every class");
  fillClasses($("disc-class"), m.classes, "the class D likes best");
  $("disc-result").replaceChildren();
  if (caps.generate) generate();
  if (caps.interpolate) interpolate();
  if (caps.mix) mix();
  if (caps.image_to_image) setUpTranslate(m);
  if (caps.discriminate) loadExamples($("disc-examples"), (k) => discriminate({ example: k }));
  if (caps.latent) setUpProject(m);
  if (m.report) loadReport();
}

// --- generation ----------------------------------------------------------------------------------------
function seedValue(id) { return Number($(id).value || 0); }
function classValue(id) { return state.current.capabilities.classes ? $(id).value : ""; }

const generate = latestOnly(async () => {
  const panel = $("panel-generate");
  const payload = { seed: seedValue("generate-seed"), rows: Number($("generate-rows").value) };
  const label = classValue("generate-class");
  if (label !== "") payload.label = Number(label);
  if (state.current.capabilities.truncation) payload.truncation = Number($("generate-truncation").value);
  const model = state.current;
  try {
    const r = await postJSON(`${base()}/generate`, payload);
    if (model !== state.current) return;  // the user moved on to another model meanwhile
    $("generate-image").src = r.image;
    $("generate-caption").textContent = `${r.n} samples from seed ${payload.seed} in ${r.ms} ms`;
    message(panel, "");
  } catch (e) { message(panel, e.message); }
});

const interpolate = latestOnly(async () => {
  const panel = $("panel-interpolate");
  const t = Number($("interp-t").value);
  $("interp-t-value").textContent = `t = ${t.toFixed(2)}`;
  const payload = { seed_a: seedValue("interp-seed-a"), seed_b: seedValue("interp-seed-b"), t };
  const label = classValue("interp-class");
  if (label !== "") payload.label = Number(label);
  if (state.current.capabilities.truncation) payload.truncation = Number($("generate-truncation").value);
  const model = state.current;
  try {
    const r = await postJSON(`${base()}/interpolate`, payload);
    if (model !== state.current) return;
    $("interp-image").src = r.image;
    message(panel, "");
  } catch (e) { message(panel, e.message); }
});

const mix = latestOnly(async () => {
  const panel = $("panel-mix");
  const levels = [...document.querySelectorAll(".mix-level:checked")].map((box) => box.value);
  const payload = { seed_a: seedValue("mix-seed-a"), seed_b: seedValue("mix-seed-b"), levels };
  const label = classValue("mix-class");
  if (label !== "") payload.label = Number(label);
  const model = state.current;
  try {
    const r = await postJSON(`${base()}/mix`, payload);
    if (model !== state.current) return;
    $("mix-image").src = r.image;
    message(panel, "");
  } catch (e) { message(panel, e.message); }
});

// --- uploads: image to image and the discriminator ----------------------------------------------------
function tooLarge(file) {
  const limit = state.limits.upload_bytes;
  if (limit && file.size > limit) {
    return `${file.name} is ${(file.size / 2 ** 20).toFixed(1)} MB; the limit is ${(limit / 2 ** 20).toFixed(0)} MB`;
  }
  return "";
}

// POST an uploaded file ({file}) or an example ({example: k}) to `action` with extra query parameters.
function sendImage(action, source, params) {
  const query = new URLSearchParams(params || {});
  if (source.example !== undefined) query.set("example", String(source.example));
  else query.set("name", source.file.name);
  const body = source.file || new Uint8Array(0);
  return api(`${base()}/${action}?${query}`, { method: "POST", headers: { "Content-Type": "application/octet-stream" }, body });
}

async function loadExamples(box, onPick, query) {
  box.replaceChildren();
  try {
    const r = await api(`${base()}/examples${query || ""}`);
    if (r.images.length) box.appendChild(el("span", { class: "hint", text: "or pick one:" }));
    r.images.forEach((src, k) => {
      const img = el("img", { src, class: "pixels example", alt: `example ${k}`, title: `example ${k}`, "data-example": String(k) });
      img.addEventListener("click", () => onPick(k));
      box.appendChild(img);
    });
  } catch (e) { box.appendChild(el("span", { class: "hint", text: e.message })); }
}

let translateSource = null;

function setUpTranslate(m) {
  const caps = m.capabilities;
  $("translate-unavailable").hidden = caps.translate;
  $("translate-body").hidden = !caps.translate;
  if (!caps.translate) return;
  $("translate-direction").replaceChildren(...caps.directions.map((d) => el("option", { value: d, text: d.replace("2", " → ").toUpperCase() })));
  $("translate-direction-label").hidden = caps.directions.length < 2;
  $("translate-full-label").hidden = !caps.full_res;
  $("translate-full").checked = false;
  const notes = [];
  if (caps.mask) notes.push("The model fills in the centre of the image (shown grey on the input).");
  if (caps.scale > 1) notes.push(`The output is ${caps.scale}× the input's size.`);
  if (caps.attributes.length) notes.push("Choose target attributes; those left on \u201ckeep\u201d keep the input's own.");
  setUpAttributes(caps);
  $("translate-note").textContent = notes.join(" ");
  $("translate-note").hidden = !notes.length;
  translateSource = null;
  translateExamples();
}

// StarGAN: one select per exclusive group (keep or one member) and per other attribute (keep, on, off).
function setUpAttributes(caps) {
  const box = $("translate-attrs");
  const grouped = new Set(caps.attribute_groups.flat());
  const selects = caps.attribute_groups.map((group) =>
    el("label", { text: `${group.join(" / ")} ` }, [el("select", { "data-group": group.join(",") },
      [el("option", { value: "", text: "keep" }), ...group.map((name) => el("option", { value: name, text: name }))])]));
  for (const name of caps.attributes.filter((n) => !grouped.has(n))) {
    selects.push(el("label", { text: `${name} ` }, [el("select", { "data-attr": name },
      [el("option", { value: "", text: "keep" }), el("option", { value: "1", text: "on" }), el("option", { value: "0", text: "off" })])]));
  }
  box.replaceChildren(...selects);
  box.hidden = !caps.attributes.length;
  box.querySelectorAll("select").forEach((s) => s.addEventListener("change", () => translate()));
}

function attributeQuery() {
  const pairs = [];
  $("translate-attrs").querySelectorAll("select[data-group]").forEach((s) => { if (s.value) pairs.push(`${s.value}=1`); });
  $("translate-attrs").querySelectorAll("select[data-attr]").forEach((s) => { if (s.value) pairs.push(`${s.dataset.attr}=${s.value}`); });
  return pairs.join(",");
}

function translateExamples() {
  const query = new URLSearchParams({ direction: $("translate-direction").value || "" });
  loadExamples($("translate-examples"), (k) => translate({ example: k }), `?${query}`);
}

async function translate(source) {
  const panel = $("panel-translate");
  translateSource = source || translateSource;
  if (!translateSource) return;
  const params = {};
  const caps = state.current.capabilities;
  if (caps.directions.length) params.direction = $("translate-direction").value;
  if (caps.full_res && $("translate-full").checked) params.full_res = "1";
  if (caps.attributes.length && attributeQuery()) params.attrs = attributeQuery();
  const model = state.current;
  try {
    const r = await sendImage("translate", translateSource, params);
    if (model !== state.current) return;
    $("translate-input").src = r.input;
    $("translate-output").src = r.output;
    $("translate-caption").textContent = `output, ${r.size[0]}×${r.size[1]} px (${r.ms} ms)`;
    if (r.read) {
      const on = Object.entries(r.read).filter(([, v]) => v).map(([k]) => k);
      $("translate-caption").textContent += ` · the input reads as: ${on.length ? on.join(", ") : "no attribute set"}`;
    }
    message(panel, "");
  } catch (e) {
    $("translate-input").removeAttribute("src");
    $("translate-output").removeAttribute("src");
    message(panel, e.message);
  }
}

let discSource = null;

async function discriminate(source) {
  const panel = $("panel-discriminate");
  discSource = source || discSource;
  if (!discSource) return;
  const params = {};
  if (state.current.capabilities.judge_as_class && $("disc-class").value !== "") params.label = $("disc-class").value;
  try {
    const r = await sendImage("discriminate", discSource, params);
    $("disc-input").src = r.input;
    showVerdict(r);
    message(panel, "");
  } catch (e) {
    $("disc-input").removeAttribute("src");
    $("disc-result").replaceChildren();
    message(panel, e.message);
  }
}

function showVerdict(r) {
  const m = state.current;
  const rows = [el("p", { class: "score", text: r.p_real !== undefined ? `P(real) = ${r.p_real.toFixed(3)}` : `D(x) = ${r.score.toFixed(3)}` })];
  const detail = r.p_real !== undefined ? `D(x) = ${r.score.toFixed(3)} (a logit); ` : "higher means more real; ";
  rows.push(el("p", { text: `${detail}generated samples average ${r.fake_mean.toFixed(3)}` }));
  if (r.per_class) {
    const judged = m.classes[r.label];
    const how = m.capabilities.predicts_class ? "D's guess: class" : $("disc-class").value === "" ? "most real as class" : "judged as class";
    rows.push(el("p", { text: `${how} ${judged}` }));
    const lo = Math.min(...r.per_class), hi = Math.max(...r.per_class);
    const bars = el("div", { class: "bars" });
    r.per_class.forEach((v, i) => {
      const share = hi > lo ? (v - lo) / (hi - lo) : 1;
      const bar = el("span", { class: i === r.label ? "bar chosen" : "bar", title: `${m.classes[i]}: ${v}` });
      bar.style.height = `${Math.round(8 + 52 * share)}px`;
      bars.appendChild(el("span", { class: "bar-box" }, [bar, el("small", { text: m.classes[i] })]));
    });
    rows.push(bars);
  }
  $("disc-result").replaceChildren(...rows);
}

function onFile(input, handler) {
  input.addEventListener("change", () => {
    const file = input.files[0];
    if (!file) return;
    input.value = "";  // so that choosing the same file again (say, after a change of direction) runs again
    const problem = tooLarge(file);
    const panel = input.closest(".panel");
    if (problem) { message(panel, problem); return; }
    handler({ file });
  });
}

// --- projection and editing directions ------------------------------------------------------------------
// The server keeps a projected latent and answers with its id; a sample's latent is its seed (and class).
// state.edit = { source: {latent: ID} or {seed, label}, model }: what the sliders move.

function setUpProject(m) {
  state.edit = null;
  const select = $("project-class");
  select.replaceChildren(...m.classes.map((name, i) => el("option", { value: String(i), text: name })));
  $("project-sliders").replaceChildren();
  $("project-directions-note").textContent = "";
  for (const id of ["project-input-caption", "project-caption", "project-edited-caption"]) $(id).textContent = "";
  editingEnabled(false);
  projectBusy(null);
  loadExamples($("project-examples"), (k) => project({ example: k }));
}

function editingEnabled(on) {
  $("project-reset").disabled = !on;
  $("project-download").disabled = !on;
  $("project-sliders").querySelectorAll("input").forEach((input) => { input.disabled = !on; });
}

// The busy line while a projection waits or runs: text, and the step it is at when the server says so.
function projectBusy(text, step, steps) {
  $("project-busy").hidden = text === null;
  for (const id of ["project-file", "project-seed-button"]) $(id).disabled = text !== null;
  $("project-examples").classList.toggle("disabled", text !== null);
  if (text === null) return;
  $("project-busy-text").textContent = text;
  const bar = $("project-progress");
  if (steps) { bar.max = steps; bar.value = step; } else bar.removeAttribute("value");  // no value: indeterminate
}

function randomTicket() {
  const bytes = new Uint8Array(12);
  crypto.getRandomValues(bytes);
  return [...bytes].map((b) => b.toString(16).padStart(2, "0")).join("");
}

async function project(source) {
  const panel = $("panel-project");
  const model = state.current;
  if (!$("project-busy").hidden) return;  // one projection at a time from this page
  const ticket = randomTicket();
  const params = { steps: $("project-steps").value, ticket };
  if (model.capabilities.classes) params.label = $("project-class").value;
  const started = performance.now();
  const seconds = () => `${((performance.now() - started) / 1000).toFixed(0)} s`;
  projectBusy("projecting: waiting for the model");
  const poll = setInterval(async () => {
    try {
      const p = await api(`${base()}/progress?ticket=${ticket}`);
      if (model !== state.current || $("project-busy").hidden) return;
      if (p.state === "running") projectBusy(`projecting: step ${p.step} of ${p.steps} (${seconds()})`, p.step, p.steps);
      else if (p.state === "queued") projectBusy(`projecting: waiting for other requests (${seconds()})`);
    } catch (e) { /* the projection's own reply says what went wrong */ }
  }, 300);
  try {
    const r = await sendImage("project", source, params);
    if (model !== state.current) return;
    $("project-input").src = r.input;
    $("project-input-caption").textContent = "input, as the model sees it";
    $("project-reconstruction").src = r.reconstruction;
    const psnr = r.psnr === null ? "∞" : r.psnr.toFixed(2);
    $("project-caption").textContent = `reconstruction in ${r.space}: PSNR ${psnr} dB, SSIM ${r.ssim.toFixed(3)} (${r.steps} steps, ${(r.ms / 1000).toFixed(1)} s)`;
    message(panel, "");
    await startEditing({ latent: r.latent }, r.reconstruction);
  } catch (e) {
    if (model === state.current) message(panel, e.message);
  } finally {
    clearInterval(poll);
    if (model === state.current) projectBusy(null);
  }
}

async function useSample() {
  const panel = $("panel-project");
  const model = state.current;
  const source = { seed: seedValue("project-seed") };
  if (model.capabilities.classes) source.label = Number($("project-class").value);
  try {
    const r = await postJSON(`${base()}/edit`, { ...source, strengths: {} });
    if (model !== state.current) return;
    $("project-input").src = r.original;
    $("project-input-caption").textContent = `sample of seed ${source.seed}`;
    $("project-reconstruction").removeAttribute("src");
    $("project-caption").textContent = "";
    message(panel, "");
    await startEditing(source, r.image);
  } catch (e) { message(panel, e.message); }
}

async function startEditing(source, image) {
  const model = state.current;
  state.edit = { source, model };
  $("project-edited").src = image;
  $("project-edited-caption").textContent = "edited: move a slider";
  await loadDirections(model);
  if (state.edit && state.edit.source === source) {
    resetSliders(false);
    editingEnabled(true);
  }
}

// The model's directions, fetched once: the first request finds them (seconds, once per checkpoint).
async function loadDirections(model) {
  const note = $("project-directions-note");
  if (!state.directions[model.index]) {
    note.textContent = "finding this model's editing directions (once per checkpoint) ...";
    try {
      state.directions[model.index] = await api(`/api/models/${model.index}/directions`);
    } catch (e) {
      note.textContent = "";
      if (model === state.current) message($("panel-project"), e.message);
      return;
    }
  }
  const r = state.directions[model.index];
  if (model !== state.current) return;
  if (!$("project-sliders").children.length) buildSliders(r);
  note.textContent = `${r.directions.length} directions in ${r.space}; strengths in standard deviations of the model's latents`;
}

function buildSliders(r) {
  const rows = r.directions.map((d) => {
    const input = el("input", { type: "range", min: String(-r.strength), max: String(r.strength), step: "0.1", value: "0",
                                "data-direction": d.name, "aria-label": `strength along ${d.name}` });
    const out = el("output", { text: "0.0" });
    input.addEventListener("input", () => { out.textContent = Number(input.value).toFixed(1); editSoon(); });
    const about = d.accuracy === null ? "closed-form factorisation (SeFa)" : `a linear boundary, held-out accuracy ${d.accuracy}`;
    const kept = d.keeps.length ? `; kept orthogonal to ${d.keeps.join(", ")}` : "";
    return el("label", { title: `${d.name}: ${about}${kept}` }, [el("span", { text: d.name }), input, out]);
  });
  $("project-sliders").replaceChildren(...rows);
  editingEnabled(state.edit !== null);
}

function strengths() {
  const chosen = {};
  $("project-sliders").querySelectorAll("input").forEach((input) => {
    if (Number(input.value) !== 0) chosen[input.dataset.direction] = Number(input.value);
  });
  return chosen;
}

function resetSliders(render) {
  $("project-sliders").querySelectorAll("label").forEach((row) => {
    row.querySelector("input").value = "0";
    row.querySelector("output").textContent = "0.0";
  });
  if (render) editSoon();
}

// One request per change once the slider rests for a moment; latestOnly drops the ones overtaken meanwhile.
let editTimer = null;
function editSoon() {
  clearTimeout(editTimer);
  editTimer = setTimeout(editNow, 120);
}

const editNow = latestOnly(async () => {
  const current = state.edit;
  if (!current || current.model !== state.current) return;
  const chosen = strengths();
  try {
    const r = await postJSON(`${base()}/edit`, { ...current.source, strengths: chosen });
    if (state.edit !== current) return;
    $("project-edited").src = r.image;
    const moved = Object.entries(chosen).map(([name, s]) => `${name} ${s > 0 ? "+" : ""}${s.toFixed(1)}`);
    $("project-edited-caption").textContent = moved.length ? `edited: ${moved.join(", ")} (${r.ms} ms)` : "edited: move a slider";
    message($("panel-project"), "");
  } catch (e) { message($("panel-project"), e.message); }
});

async function downloadLatent() {
  const current = state.edit;
  if (!current) return;
  try {
    const response = await fetch(`${base()}/latents`, {
      method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify({ ...current.source, strengths: strengths() }),
    });
    if (!response.ok) {
      const body = await response.json().catch(() => ({}));
      throw new Error(body.error || `the server answered ${response.status}`);
    }
    const url = URL.createObjectURL(await response.blob());
    const link = el("a", { href: url, download: `${state.current.name}-latents.npz` });
    document.body.appendChild(link);
    link.click();
    link.remove();
    setTimeout(() => URL.revokeObjectURL(url), 10000);
  } catch (e) { message($("panel-project"), e.message); }
}

// --- the training report -------------------------------------------------------------------------------
const PALETTE = ["#2f6fde", "#e0603a", "#2a9d6f", "#9b51c9", "#c9a227", "#4a4a4a"];

function lineChart(box, series, opts) {
  const names = Object.keys(series).filter((k) => series[k].length);
  box.replaceChildren();
  if (!names.length) { box.appendChild(el("p", { class: "hint", text: "nothing logged yet" })); return; }
  const W = 460, H = 220, L = 48, R = 10, T = 10, B = 28;
  const points = names.flatMap((k) => series[k]);
  const x0 = Math.min(...points.map((p) => p[0])), x1 = Math.max(...points.map((p) => p[0]));
  let y0 = Math.min(...points.map((p) => p[1])), y1 = Math.max(...points.map((p) => p[1]));
  if (y0 === y1) { y0 -= 1; y1 += 1; }
  const sx = (x) => L + (x1 > x0 ? (x - x0) / (x1 - x0) : 0.5) * (W - L - R);
  const sy = (y) => T + (1 - (y - y0) / (y1 - y0)) * (H - T - B);
  const chart = svg("svg", { viewBox: `0 0 ${W} ${H}`, role: "img", "aria-label": opts.label, class: "line-chart" });
  for (const frac of [0, 0.25, 0.5, 0.75, 1]) {
    const y = y0 + frac * (y1 - y0);
    chart.appendChild(svg("line", { x1: L, x2: W - R, y1: sy(y), y2: sy(y), class: "grid" }));
    const label = svg("text", { x: L - 6, y: sy(y) + 4, class: "tick", "text-anchor": "end" });
    label.textContent = Math.abs(y) >= 100 ? y.toFixed(0) : y.toFixed(2);
    chart.appendChild(label);
  }
  for (const [x, anchor] of [[x0, "start"], [x1, "end"]]) {
    const label = svg("text", { x: sx(x), y: H - 8, class: "tick", "text-anchor": anchor });
    label.textContent = `step ${x}`;
    chart.appendChild(label);
  }
  names.forEach((name, i) => {
    const color = PALETTE[i % PALETTE.length];
    const path = series[name].map((p) => `${sx(p[0]).toFixed(1)},${sy(p[1]).toFixed(1)}`).join(" ");
    chart.appendChild(svg("polyline", { points: path, fill: "none", stroke: color, "stroke-width": 1.6, "data-series": name }));
    if (opts.markers) for (const p of series[name]) chart.appendChild(svg("circle", { cx: sx(p[0]), cy: sy(p[1]), r: 3, fill: color }));
  });
  const legend = el("div", { class: "legend" }, names.map((name, i) => {
    const swatch = el("i");
    swatch.style.background = PALETTE[i % PALETTE.length];  // CSSOM, which the page's CSP allows
    return el("span", {}, [swatch, document.createTextNode(name)]);
  }));
  box.append(chart, legend);
}

function metricRows(table, latest) {
  table.replaceChildren();
  const add = (key, value) => table.appendChild(el("tr", {}, [el("th", { text: key }), el("td", { text: String(value) })]));
  for (const record of [latest.eval, latest.train]) {
    if (!record) continue;
    for (const [key, value] of Object.entries(record)) {
      if (key === "kind") continue;
      add(key, typeof value === "number" && !Number.isInteger(value) ? value.toFixed(4) : value);
    }
  }
  if (!table.children.length) add("metrics", "none logged");
}

async function loadReport() {
  const panel = $("panel-report");
  try {
    const r = await api(`${base()}/report`);
    lineChart($("report-losses"), r.losses, { label: "losses over training" });
    $("report-quality-box").hidden = !Object.keys(r.quality).length;
    lineChart($("report-quality"), r.quality, { label: "quality over training", markers: true });
    metricRows($("report-latest"), r.latest);
    const slider = $("report-step");
    slider.max = String(Math.max(0, r.samples.length - 1));
    slider.value = slider.max;
    slider.disabled = r.samples.length < 2;
    const showStep = () => {
      if (!r.samples.length) { $("report-step-value").textContent = "no sample grids saved"; return; }
      const step = r.samples[Number(slider.value)];
      $("report-sample").src = `${base()}/samples/${step}.png`;
      $("report-step-value").textContent = `step ${step} (${Number(slider.value) + 1} of ${r.samples.length})`;
    };
    slider.oninput = showStep;
    showStep();
    message(panel, "");
  } catch (e) { message(panel, e.message); }
}

// --- wiring ---------------------------------------------------------------------------------------------
function wire() {
  $("generate-button").addEventListener("click", generate);
  $("generate-random").addEventListener("click", () => { $("generate-seed").value = String(Math.floor(Math.random() * 1e6)); generate(); });
  for (const id of ["generate-seed", "generate-class", "generate-rows"]) $(id).addEventListener("change", generate);
  $("generate-truncation").addEventListener("input", () => {
    $("generate-truncation-value").textContent = Number($("generate-truncation").value).toFixed(2);
    generate();
  });
  $("interp-t").addEventListener("input", interpolate);
  for (const id of ["interp-seed-a", "interp-seed-b", "interp-class"]) $(id).addEventListener("change", interpolate);
  $("mix-button").addEventListener("click", mix);
  document.querySelectorAll(".mix-level").forEach((box) => box.addEventListener("change", mix));
  onFile($("translate-file"), translate);
  $("translate-direction").addEventListener("change", () => {
    translateSource = null;  // the other direction takes images of the other domain
    $("translate-input").removeAttribute("src");
    $("translate-output").removeAttribute("src");
    translateExamples();
  });
  $("translate-full").addEventListener("change", () => translate());
  onFile($("disc-file"), discriminate);
  onFile($("project-file"), project);
  $("project-seed-button").addEventListener("click", useSample);
  $("project-reset").addEventListener("click", () => resetSliders(true));
  $("project-download").addEventListener("click", downloadLatent);
  $("disc-class").addEventListener("change", () => discriminate());
}

async function start() {
  wire();
  try {
    const r = await api("/api/models");
    state.models = r.models;
    state.limits = r.limits;
    renderModelList();
    $("status").textContent = `${r.models.length} model${r.models.length === 1 ? "" : "s"} loaded`;
    if (state.models.length) selectModel(0);
  } catch (e) {
    const box = $("page-message");
    box.textContent = `cannot reach the ganforge server: ${e.message}`;
    box.hidden = false;
  }
}

start();
