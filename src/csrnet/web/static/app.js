"use strict";
// The csrnet page: plain JavaScript, no library, no request beyond this server.
//
// Every picture on screen says which settings it belongs to. Previews are cached per photo and per
// model (the strength is blended here), so an answer that arrives late can only ever be stored
// under the model it was computed with, never shown for another one; the 100 % view and the
// single-slot requests carry a sequence number and older answers are dropped.
// A photo the server refused is marked bad and never sent again.

const PREVIEW = 1200;  // long edge of the quick previews (px)
const $ = (id) => document.getElementById(id);

const state = {
  items: [],          // the photos, in the order chosen
  current: null,      // the one in the viewer
  nextId: 1,
  seq: 0,             // request counter
  latest: new Map(),  // request slot -> sequence number of its newest request
  live: false,        // Enhance was pressed: new photos and models preview at once
  mode: "split",      // split | before | after
  back: "split",      // the mode the before/after key returns to
  zoom: false,
  anchor: null,       // the point a 100 % view was opened at, until the user moves the view
  frac: 0.5,          // divider position over the visible picture (0 = all after, 1 = all before)
  models: new Map(),  // name -> entry of /api/models
  batch: false,       // Download all is running
  answers: 0,         // preview answers handled (for tests: an answer dropped or stored still counts)
};

// ---------------------------------------------------------------- small helpers
class HttpError extends Error {
  constructor(status, message) { super(message); this.status = status; }
}
function clamp(x, lo, hi) { return Math.min(hi, Math.max(lo, x)); }
function setStatus(msg) { $("status").textContent = msg || ""; }
function setError(msg) { $("error").textContent = msg ? String(msg).split("\n")[0] : ""; }
function mb(n) { return n >= 1e6 ? (n / 1e6).toFixed(2) + " MB" : Math.max(1, Math.round(n / 1e3)) + " kB"; }
function begin(slot) { const s = ++state.seq; state.latest.set(slot, s); return s; }
function isLatest(slot, s) { return state.latest.get(slot) === s; }
/** ``msg`` about a photo: "name: message", once (server messages often start with the name already). */
function bare(item, msg) { msg = String(msg); return msg.startsWith(item.name + ": ") ? msg.slice(item.name.length + 2) : msg; }
function about(item, msg) { return item.name + ": " + bare(item, msg); }
function stem(name) { const i = name.lastIndexOf("."); return i > 0 ? name.slice(0, i) : name; }
function ext(name) { const i = name.lastIndexOf("."); return i > 0 ? name.slice(i) : ""; }

function strengthText() { return parseFloat($("strength").value).toFixed(2); }
function longEdge() {
  const v = $("longEdge").value.trim();
  return v === "" ? null : parseInt(v, 10);
}
function quality() { return parseInt($("quality").value, 10); }

/** The output settings on screen, checked; throws with a message for a bad field. */
function settings() {
  const cfg = {
    model: $("model").value,
    strength: $("strength").value,
    format: $("format").value,
    quality: quality(),
    long_edge: longEdge(),
  };
  if (!cfg.model) throw new Error("no model: the server's model list did not load");
  if (!(cfg.quality >= 1 && cfg.quality <= 100)) throw new Error("quality must be between 1 and 100");
  if (cfg.long_edge !== null && !(cfg.long_edge >= 16)) throw new Error("the long edge must be at least 16 px (or empty for the original size)");
  return cfg;
}

/** A model's display name: the API's title if it has one, else its name prettified. */
function prettyName(m) {
  if (m.title) return m.title;
  let name = String(m.name).split(/[\\/]/).pop().replace(/\.(safetensors|pth|pt)$/i, "");
  if (m.arch && name.toLowerCase().startsWith(m.arch.toLowerCase() + "-") && name.length > m.arch.length + 1) name = name.slice(m.arch.length + 1);
  return name.split(/[-_\s]+/).filter(Boolean).map((w) => w[0].toUpperCase() + w.slice(1)).join(" ") || String(m.name);
}
/** A model's one-line "use it for": the API's use_for/summary if any, else its description. */
function useFor(m) {
  let text = String(m.use_for || m.summary || m.description || "").split("\n")[0].replace(/^default:\s*/i, "").trim();
  return text ? text[0].toUpperCase() + text.slice(1) : "";
}
function modelLabel(name) { const m = state.models.get(name); return m ? prettyName(m) : name; }

// ---------------------------------------------------------------- requests
/** Decide from an error answer whether the photo itself is at fault (then it is never sent again). */
function fileAtFault(status, body, msg) {
  if (body && typeof body.field === "string") return body.field === "file";
  if (![400, 413, 415, 422, 500].includes(status)) return false;
  return !/^(strength|quality|preview|long.?edge|format|size|model|unknown model|origin|host)\b/i.test(msg);
}

async function post(item, url, fields) {
  if (item.bad) throw new HttpError(0, item.bad);  // never resend a photo the server refused
  const body = new FormData();
  body.append("file", item.file, item.file.name);
  for (const [k, v] of Object.entries(fields)) if (v !== null && v !== undefined && v !== "") body.append(k, String(v));
  let res;
  try { res = await fetch(url, { method: "POST", body }); }
  catch (e) { throw new HttpError(0, "cannot reach the csrnet server (is `csrnet web` still running?)"); }
  if (!res.ok) {
    let msg = res.status + " " + res.statusText, json = null;
    try { json = await res.json(); if (json && json.error) msg = String(json.error); } catch (e) { /* not JSON */ }
    if (fileAtFault(res.status, json, msg)) markBad(item, msg);
    throw new HttpError(res.status, msg);
  }
  return res;
}

/** The settings the server says it used, from its X-Csrnet-Settings header, or null when it sends none.

Read forms: csrnet's mark "csrnet 0.1.0 (model auto@377325dd, strength 1, long edge 300)", JSON, or
k=v pairs. Keys with spaces become underscores; a model's "@fingerprint" is dropped. */
function serverSettings(res) {
  const raw = res.headers.get("X-Csrnet-Settings");
  if (!raw) return null;
  const out = {};
  try {
    const j = JSON.parse(raw);
    if (j && typeof j === "object") Object.assign(out, j);
  } catch (e) {
    const open = raw.indexOf("("), close = raw.lastIndexOf(")");
    const body = open >= 0 && close > open ? raw.slice(open + 1, close) : raw;
    for (const part of body.split(/[;,&]\s*/)) {
      const m = /^\s*([^=]+?)\s*(?:=\s*|\s+)(\S+)\s*$/.exec(part);
      if (m) { try { out[m[1]] = decodeURIComponent(m[2]); } catch (err) { out[m[1]] = m[2]; } }
    }
  }
  const norm = {};
  for (const [k, v] of Object.entries(out)) norm[k.trim().toLowerCase().replace(/[\s-]+/g, "_")] = v;
  if (typeof norm.model === "string" && !norm.model.includes("+")) norm.model = norm.model.split("@")[0];
  else delete norm.model;  // a blend: not a single model name
  return norm;
}

/** Throw if the server says it used another (bundled) model than ``model``. */
function checkModel(used, model) {
  const m = state.models.get(model);
  if (used && used.model && m && m.bundled && used.model !== model) throw new Error("the server answered for model " + used.model + ", not " + model);
}

function fileName(res, fallback) {
  const cd = res.headers.get("Content-Disposition") || "";
  let m = /filename\*=UTF-8''([^;]+)/i.exec(cd);
  if (m) { try { return decodeURIComponent(m[1]); } catch (e) { /* fall through */ } }
  m = /filename="([^"]*)"/i.exec(cd);
  return m ? m[1] : fallback;
}

async function toImageData(blob) {
  const url = URL.createObjectURL(blob);
  try {
    const img = new Image();
    img.src = url;
    await img.decode();
    const c = document.createElement("canvas");
    c.width = img.naturalWidth; c.height = img.naturalHeight;
    const ctx = c.getContext("2d", { willReadFrequently: true });
    ctx.drawImage(img, 0, 0);
    return ctx.getImageData(0, 0, c.width, c.height);
  } finally { URL.revokeObjectURL(url); }
}

function saveBlob(blob, name) {
  const a = document.createElement("a");
  a.href = URL.createObjectURL(blob); a.download = name;
  document.body.appendChild(a); a.click(); a.remove();
  setTimeout(() => URL.revokeObjectURL(a.href), 30000);
}

// ---------------------------------------------------------------- the photo list
function addFiles(files) {
  const added = [];
  for (const file of files) {
    const item = {
      id: state.nextId++, file, name: file.name || "photo", bad: null,
      before: null, loadingBefore: false,
      after: new Map(),       // model -> ImageData (preview at strength 1)
      pending: new Set(),     // models whose preview is being computed
      full: null,             // {w, h, bitmap}: the full-size original for 100 %
      fullAfter: null,        // {model, strength, bitmap}: the full-size result for 100 %
      fullLoading: false, fullAfterLoading: null,
      busy: false, status: "new", note: "",
    };
    state.items.push(item);
    added.push(item);
  }
  if (added.length) select(added[0]);
  refresh();
}

function select(item) {
  if (state.current && state.current !== item) {  // free the previews of the photo we leave
    const old = state.current;
    old.after.clear(); old.before = null; old.full = null; old.fullAfter = null;
  }
  state.current = item;
  setError(item && item.bad ? about(item, item.bad) : "");
  if (item && !item.bad) {
    loadBefore(item);
    if (state.live) ensureAfter(item);
  }
  refresh();
  layout();
  render();
}

function removeItem(item) {
  const i = state.items.indexOf(item);
  if (i < 0) return;
  state.items.splice(i, 1);
  if (state.current === item) {
    state.current = null;
    select(state.items[Math.min(i, state.items.length - 1)] || null);
  }
  refresh();
}

function markBad(item, msg) {
  item.bad = bare(item, msg || "the server cannot read this photo");
  item.status = "error"; item.note = item.bad;
  item.before = null; item.after.clear(); item.full = null; item.fullAfter = null;
  refresh(); render();
}

function setItemStatus(item, status, note) {
  item.status = status; item.note = note || "";
  refreshQueue();
}

// ---------------------------------------------------------------- previews
async function loadBefore(item) {
  if (item.bad || item.before || item.loadingBefore) return;
  item.loadingBefore = true;
  const done = item.status === "done" ? item.note : null;  // a photo already saved keeps saying so
  if (done === null) setItemStatus(item, "working", "reading");
  refreshBusy();
  try {
    const res = await post(item, "/api/enhance", { model: $("model").value, strength: 0, preview: PREVIEW, format: "jpg", quality: 92 });
    const data = await toImageData(await res.blob());
    if (!item.bad && state.items.includes(item)) item.before = data;
    if (item === state.current) { layout(); render(); if (!state.live) setStatus(item.name + ": press Enhance for the preview"); }
  } catch (e) {
    if (item === state.current) setError(about(item, e.message));
  } finally {
    if (!item.bad && !item.busy) setItemStatus(item, done === null ? "ready" : "done", done || "");
    item.loadingBefore = false;
    refresh();
  }
}

/** Make sure the preview for the model on screen exists or is being computed. */
async function ensureAfter(item) {
  const model = $("model").value;
  if (!item || item.bad || !model || item.after.has(model) || item.pending.has(model)) { render(); return; }
  item.pending.add(model);
  refreshBusy();
  const t = performance.now();
  try {
    const res = await post(item, "/api/enhance", { model, strength: 1, preview: PREVIEW, format: "jpg", quality: 92 });
    const used = serverSettings(res);
    const blob = await res.blob();
    checkModel(used, model);
    const data = await toImageData(blob);
    if (!item.bad && state.items.includes(item)) item.after.set(model, data);  // stored under the model it is for
    if (item === state.current && model === $("model").value) {
      setStatus("Preview (" + modelLabel(model) + ") ready in " + Math.round(performance.now() - t) + " ms; move the strength slider, then Download.");
    }
  } catch (e) {
    if (item === state.current && model === $("model").value) setError(about(item, e.message));
  } finally {
    item.pending.delete(model);
    state.answers++;
    document.documentElement.dataset.previewAnswers = String(state.answers);
    if (item === state.current) { layout(); render(); }
    refresh();
  }
}

function needFull(item) {
  return !!(item && item.before && Math.max(item.before.width, item.before.height) >= PREVIEW);
}

let fullTimer = 0;
/** In 100 % view of a photo larger than the preview: fetch the full-size original and result. */
function ensureFull(item, delay) {
  clearTimeout(fullTimer);
  if (!state.zoom || !needFull(item) || item.bad) return;
  if (!item.full && !item.fullLoading) loadFullBefore(item);
  const model = $("model").value, strength = strengthText();
  if (item.fullAfter && item.fullAfter.model === model && item.fullAfter.strength === strength) return;
  fullTimer = setTimeout(() => loadFullAfter(item, model, strength), delay || 0);
}

async function loadFullBefore(item) {
  item.fullLoading = true; refreshBusy();
  try {
    const res = await post(item, "/api/enhance", { model: $("model").value, strength: 0, format: "jpg", quality: 95 });
    const bitmap = await createImageBitmap(await res.blob());
    if (!item.bad) item.full = { w: bitmap.width, h: bitmap.height, bitmap };
  } catch (e) {
    if (item === state.current) setError(about(item, "100 % view: " + bare(item, e.message)));
  } finally {
    item.fullLoading = false;
    if (item === state.current) { layout(); render(); }
    refreshBusy();
  }
}

async function loadFullAfter(item, model, strength) {
  if (model !== $("model").value || strength !== strengthText() || item !== state.current || !state.zoom) return;
  const slot = "full:" + item.id, s = begin(slot);
  item.fullAfterLoading = s; refreshBusy();
  try {
    const res = await post(item, "/api/enhance", { model, strength, format: "jpg", quality: 95 });
    const bitmap = await createImageBitmap(await res.blob());
    if (isLatest(slot, s) && !item.bad) item.fullAfter = { model, strength, bitmap };  // older answers are dropped
  } catch (e) {
    if (isLatest(slot, s) && item === state.current) setError(about(item, "100 % view: " + bare(item, e.message)));
  } finally {
    if (item.fullAfterLoading === s) item.fullAfterLoading = null;
    if (item === state.current) render();
    refreshBusy();
  }
}

// ---------------------------------------------------------------- drawing
function drawData(canvas, data, key) {
  if (canvas.dataset.key === key) return;
  canvas.width = data.width; canvas.height = data.height;
  canvas.getContext("2d").putImageData(data, 0, 0);
  canvas.dataset.key = key;
}
function drawBitmap(canvas, bitmap, key) {
  if (canvas.dataset.key === key) return;
  canvas.width = bitmap.width; canvas.height = bitmap.height;
  canvas.getContext("2d").drawImage(bitmap, 0, 0);
  canvas.dataset.key = key;
}
function blendData(b, e, s) {
  const out = new ImageData(b.width, b.height);
  const o = out.data, bd = b.data, ed = e.data;  // Uint8ClampedArray: rounds and clips to 0..255
  for (let i = 0; i < bd.length; i += 4) {
    o[i] = bd[i] + s * (ed[i] - bd[i]);
    o[i + 1] = bd[i + 1] + s * (ed[i + 1] - bd[i + 1]);
    o[i + 2] = bd[i + 2] + s * (ed[i + 2] - bd[i + 2]);
    o[i + 3] = 255;
  }
  return out;
}
function clearCanvas(canvas) {
  canvas.width = 0; canvas.height = 0; canvas.dataset.key = "";
}

/** The size the pane stands for: the full photo in a 100 % view once loaded, else the preview. */
function naturalSize(item) {
  if (!item || !item.before) return null;
  if (state.zoom && item.full) return { w: item.full.w, h: item.full.h };
  return { w: item.before.width, h: item.before.height };
}

let frame = 0;
function scheduleRender() { if (!frame) frame = requestAnimationFrame(() => { frame = 0; render(); }); }

/** Draw the current photo for the settings on screen; the After layer is hidden unless it is theirs. */
function render() {
  const item = state.current, model = $("model").value, s = strengthText();
  const before = $("before"), after = $("after");
  $("strengthValue").textContent = $("afterStrength").textContent = s;
  let afterShown = null;
  if (item && item.before && !item.bad) {
    const useFull = state.zoom && item.full;
    if (useFull) drawBitmap(before, item.full.bitmap, "full:" + item.id);
    else drawData(before, item.before, "preview:" + item.id);
    before.dataset.item = item.name;
    const fa = item.fullAfter;
    if (useFull && fa && fa.model === model && fa.strength === s) {
      drawBitmap(after, fa.bitmap, "full:" + item.id + ":" + model + ":" + s);
      afterShown = { model, strength: s, kind: "full" };
    } else if (item.after.has(model)) {
      const key = "preview:" + item.id + ":" + model + ":" + s;
      if (after.dataset.key !== key) drawData(after, blendData(item.before, item.after.get(model), parseFloat(s)), key);
      afterShown = { model, strength: s, kind: "preview" };
    }
  } else {
    clearCanvas(before); before.dataset.item = "";
  }
  if (!afterShown) clearCanvas(after);
  after.dataset.item = afterShown ? item.name : "";
  after.dataset.model = afterShown ? afterShown.model : "";
  after.dataset.strength = afterShown ? afterShown.strength : "";
  after.dataset.kind = afterShown ? afterShown.kind : "";

  // labels: which settings the pictures are for
  const tagA = $("tagAfter"), tagB = $("tagBefore");
  const hasBefore = !!(item && item.before && !item.bad);
  let afterText = "";
  if (hasBefore) {
    if (afterShown) afterText = "After: " + modelLabel(model) + ", strength " + s + (afterShown.kind === "full" ? " (full size)" : " (preview)");
    else if (item.pending.has(model)) afterText = "After: computing " + modelLabel(model) + " preview…";
    else afterText = "After: press Enhance for " + modelLabel(model);
    if (state.zoom && needFull(item) && afterShown && afterShown.kind !== "full") afterText += ", full size loading…";
  }
  tagA.textContent = afterShown ? modelLabel(model) + " · " + s : (hasBefore && item.pending.has(model) ? "computing…" : "");
  tagA.hidden = !afterShown && !(hasBefore && item.pending.has(model)) || state.mode === "before";
  tagB.hidden = !hasBefore || state.mode === "after" && !!afterShown;
  $("beforeInfo").textContent = hasBefore ? "Before: " + item.name + (state.zoom && item.full ? " (" + item.full.w + "×" + item.full.h + ", 100 %)" : "") + "." : "";
  $("afterInfo").textContent = afterText;
  $("stageWrap").classList.toggle("empty", !hasBefore);
  $("stageWrap").dataset.mode = state.mode;
  updateDivider();
  refreshBusy();
}

// ---------------------------------------------------------------- layout, split view, zoom
function layout() {
  const stage = $("stage"), pane = $("pane");
  const dims = naturalSize(state.current);
  if (!dims) { pane.style.width = pane.style.height = "0px"; stage.style.height = ""; updateDivider(); return; }
  const availW = Math.max(50, stage.clientWidth || $("stageWrap").clientWidth);
  const wide = window.matchMedia("(min-width: 800px)").matches;
  const maxH = Math.max(200, Math.round(wide ? window.innerHeight - 170 : window.innerHeight * 0.62));
  const preview = state.current.before;
  const fit = Math.min(availW / preview.width, maxH / preview.height);
  const fitH = Math.floor(preview.height * fit);
  const scale = state.zoom ? 1 / (window.devicePixelRatio || 1) : fit;
  const w = Math.floor(dims.w * scale), h = Math.floor(dims.h * scale);
  const oldW = pane.offsetWidth, oldH = pane.offsetHeight, wasZoomed = stage.classList.contains("zoomed");
  // still at 100 % but a new size (the full-size photo replaced the preview): keep the same spot in view
  // (the point zoomed at, as long as the user has not moved the view since; else the centre)
  const a = state.anchor;
  const keep = state.zoom && wasZoomed && oldW > 0 && oldH > 0 && (oldW !== w || oldH !== h)
    ? (a ? { x: a.fx, y: a.fy, ox: a.ox, oy: a.oy }
      : { x: (stage.scrollLeft + stage.clientWidth / 2) / oldW, y: (stage.scrollTop + stage.clientHeight / 2) / oldH,
        ox: stage.clientWidth / 2, oy: stage.clientHeight / 2 }) : null;
  pane.style.width = w + "px"; pane.style.height = h + "px";
  stage.style.height = (state.zoom ? Math.max(fitH, Math.min(maxH, h)) : fitH) + "px";
  stage.classList.toggle("zoomed", state.zoom);
  if (keep) {
    stage.scrollLeft = keep.x * w - keep.ox;
    stage.scrollTop = keep.y * h - keep.oy;
  }
  updateDivider();
}

/** The part of the picture visible in the stage, in viewport coordinates. */
function visibleBox() {
  const s = $("stage").getBoundingClientRect(), p = $("pane").getBoundingClientRect();
  const stage = $("stage");
  const right = Math.min(p.right, s.left + stage.clientWidth), bottom = Math.min(p.bottom, s.top + stage.clientHeight);
  return { left: Math.max(p.left, s.left), right, top: Math.max(p.top, s.top), bottom, pane: p };
}

function updateDivider() {
  const div = $("divider"), after = $("after");
  const wrap = $("stageWrap").getBoundingClientRect();
  const v = visibleBox();
  const hasAfter = !!after.dataset.model;
  const split = state.mode === "split" && hasAfter && v.right > v.left;
  const x = v.left + state.frac * (v.right - v.left);
  div.hidden = !split;
  div.style.left = (x - wrap.left) + "px";
  div.style.top = (v.top - wrap.top) + "px";
  div.style.height = Math.max(0, v.bottom - v.top) + "px";
  const pct = Math.round(state.frac * 100);
  div.setAttribute("aria-valuenow", String(pct));
  div.setAttribute("aria-valuetext", "before on the left " + pct + " %, after on the right " + (100 - pct) + " %");
  const tagB = $("tagBefore"), tagA = $("tagAfter"), inset = 8;
  tagB.style.left = Math.max(0, v.left - wrap.left) + inset + "px";
  tagA.style.right = Math.max(0, wrap.right - v.right) + inset + "px";
  tagB.style.top = tagA.style.top = Math.max(0, v.top - wrap.top) + inset + "px";
  const clip = Math.max(0, x - v.pane.left);
  after.style.clipPath = split ? "inset(0 0 0 " + clip.toFixed(1) + "px)" : "none";
  after.style.visibility = hasAfter && state.mode !== "before" ? "visible" : "hidden";
  for (const b of document.querySelectorAll(".seg button")) b.setAttribute("aria-pressed", String(b.dataset.mode === state.mode));
  $("zoom").setAttribute("aria-pressed", String(state.zoom));
  $("zoom").textContent = state.zoom ? "Fit" : "100 %";
}

function moveDivider(clientX) {
  const v = visibleBox();
  if (v.right <= v.left) return;
  state.frac = clamp((clientX - v.left) / (v.right - v.left), 0, 1);
  updateDivider();
}

function setMode(mode) {
  state.mode = mode;
  if (mode !== "before") state.back = mode;
  render();
}
function toggleBefore() {
  if (!state.current || !state.current.before) return;
  setMode(state.mode === "before" ? state.back : "before");
  setStatus(state.mode === "before" ? "Showing the original (press \\ or B again for the result)" : "Showing the result");
}

/** Switch between fit and 100 %; keep the point under (clientX, clientY) or the divider in place. */
function toggleZoom(clientX, clientY) {
  const item = state.current;
  if (!item || !item.before) return;
  const stage = $("stage");
  const p = $("pane").getBoundingClientRect(), s = stage.getBoundingClientRect();
  const v = visibleBox();
  const cx = clientX !== undefined ? clientX : v.left + state.frac * (v.right - v.left);
  const cy = clientY !== undefined ? clientY : (v.top + v.bottom) / 2;
  const fx = clamp((cx - p.left) / Math.max(1, p.width), 0, 1), fy = clamp((cy - p.top) / Math.max(1, p.height), 0, 1);
  state.zoom = !state.zoom;
  layout();
  if (state.zoom) {
    const q = $("pane").getBoundingClientRect();
    state.anchor = { fx, fy, ox: cx - s.left, oy: cy - s.top };
    stage.scrollLeft = fx * q.width - state.anchor.ox;
    stage.scrollTop = fy * q.height - state.anchor.oy;
    ensureFull(item);
  } else {
    stage.scrollLeft = stage.scrollTop = 0;
  }
  render();
}

// ---------------------------------------------------------------- saving
function fallbackName(item, cfg) {
  const e = cfg.format ? "." + cfg.format : ext(item.name);
  return stem(item.name) + "_csrnet" + e;
}

/** One photo at full resolution with the settings ``cfg``: {name, blob, note}. */
async function fetchResult(item, cfg) {
  const res = await post(item, "/api/enhance", cfg);
  const blob = await res.blob();
  const name = fileName(res, fallbackName(item, cfg));
  let note = "";
  const used = serverSettings(res);
  checkModel(used, cfg.model);
  if (cfg.long_edge !== null) {
    if (used && ("long_edge" in used)) {
      /* the server says it resized */
    } else {
      // an older server ignores long_edge: say so instead of pretending the file is resized
      try {
        const bmp = await createImageBitmap(blob);
        if (Math.max(bmp.width, bmp.height) > cfg.long_edge) note = "not resized: this server ignores the long edge";
        bmp.close();
      } catch (e) { note = "the resize could not be checked"; }
    }
  }
  return { name, blob, note };
}

function describe(cfg) {
  return modelLabel(cfg.model) + ", strength " + parseFloat(cfg.strength).toFixed(2) +
    (cfg.long_edge ? ", long edge " + cfg.long_edge + " px" : "");
}

async function downloadItem(item) {
  if (!item || item.bad || item.busy) return;
  let cfg;
  try { cfg = settings(); } catch (e) { setError(e.message); return; }
  setError("");
  item.busy = true;
  setItemStatus(item, "working", "enhancing at full size");
  refresh();
  const t = performance.now();
  const tick = setInterval(() => setStatus("Enhancing " + item.name + " at full size … " + Math.round((performance.now() - t) / 1000) + " s"), 500);
  setStatus("Enhancing " + item.name + " at full size …");
  try {
    const r = await fetchResult(item, cfg);
    saveBlob(r.blob, r.name);
    setItemStatus(item, "done", mb(r.blob.size) + (r.note ? "; " + r.note : ""));
    setStatus("Saved " + r.name + " (" + mb(r.blob.size) + ", " + describe(cfg) + ", " + Math.round(performance.now() - t) + " ms)");
    if (r.note) setError(r.name + ": " + r.note);
  } catch (e) {
    setStatus("");
    setError(about(item, e.message));
    setItemStatus(item, item.bad ? "error" : "ready", item.bad ? item.bad : "");
  } finally {
    clearInterval(tick);
    item.busy = false;
    refresh();
  }
}

async function exportCube(item) {
  if (!item || item.bad || item.busy) return;
  let cfg;
  try { cfg = settings(); } catch (e) { setError(e.message); return; }
  setError("");
  item.busy = true; refresh();
  setStatus("Baking the .cube LUT for " + item.name + " …");
  const t = performance.now();
  try {
    const res = await post(item, "/api/lut", { model: cfg.model, strength: cfg.strength, size: $("lutSize").value });
    const blob = await res.blob();
    const name = fileName(res, stem(item.name) + "_csrnet.cube");
    saveBlob(blob, name);
    setStatus("Saved " + name + " (" + describe(cfg) + ", " + Math.round(performance.now() - t) + " ms)");
  } catch (e) {
    setStatus("");
    setError(about(item, e.message));
  } finally {
    item.busy = false; refresh();
  }
}

// ---------------------------------------------------------------- zip (STORE method, CRC-32), no library
const CRC_TABLE = (() => {
  const t = new Uint32Array(256);
  for (let n = 0; n < 256; n++) {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? 0xEDB88320 ^ (c >>> 1) : c >>> 1;
    t[n] = c >>> 0;
  }
  return t;
})();
function crc32(bytes) {
  let c = 0xFFFFFFFF;
  for (let i = 0; i < bytes.length; i++) c = CRC_TABLE[(c ^ bytes[i]) & 0xFF] ^ (c >>> 8);
  return (c ^ 0xFFFFFFFF) >>> 0;
}
/** A zip file of ``entries`` ([{name, blob}]), stored uncompressed (photos do not compress). */
async function makeZip(entries) {
  const enc = new TextEncoder(), now = new Date();
  const time = (now.getHours() << 11) | (now.getMinutes() << 5) | (now.getSeconds() >> 1);
  const date = (Math.max(0, now.getFullYear() - 1980) << 9) | ((now.getMonth() + 1) << 5) | now.getDate();
  const parts = [], central = [];
  let offset = 0, total = 0;
  for (const e of entries) total += e.blob.size + 100 + e.name.length * 3;
  if (entries.length > 65535 || total >= 0xFFFFFFFF) throw new Error("too much for one zip file (4 GB, 65535 files): download the photos one by one");
  for (const e of entries) {
    const data = new Uint8Array(await e.blob.arrayBuffer()), name = enc.encode(e.name), crc = crc32(data);
    const local = new DataView(new ArrayBuffer(30));
    local.setUint32(0, 0x04034b50, true); local.setUint16(4, 20, true); local.setUint16(6, 0x0800, true);  // UTF-8 names
    local.setUint16(8, 0, true); local.setUint16(10, time, true); local.setUint16(12, date, true);
    local.setUint32(14, crc, true); local.setUint32(18, data.length, true); local.setUint32(22, data.length, true);
    local.setUint16(26, name.length, true); local.setUint16(28, 0, true);
    parts.push(local, name, data);
    const cd = new DataView(new ArrayBuffer(46));
    cd.setUint32(0, 0x02014b50, true); cd.setUint16(4, 20, true); cd.setUint16(6, 20, true); cd.setUint16(8, 0x0800, true);
    cd.setUint16(10, 0, true); cd.setUint16(12, time, true); cd.setUint16(14, date, true);
    cd.setUint32(16, crc, true); cd.setUint32(20, data.length, true); cd.setUint32(24, data.length, true);
    cd.setUint16(28, name.length, true); cd.setUint32(42, offset, true);  // extra, comment, disk, attributes: 0
    central.push(cd, name);
    offset += 30 + name.length + data.length;
  }
  let cdSize = 0;
  for (const c of central) cdSize += c.byteLength;
  const end = new DataView(new ArrayBuffer(22));
  end.setUint32(0, 0x06054b50, true); end.setUint16(8, entries.length, true); end.setUint16(10, entries.length, true);
  end.setUint32(12, cdSize, true); end.setUint32(16, offset, true);
  return new Blob([...parts, ...central, end], { type: "application/zip" });
}

function uniqueName(name, taken) {
  let out = name, n = 2;
  while (taken.has(out.toLowerCase())) out = stem(name) + "-" + n++ + ext(name);
  taken.add(out.toLowerCase());
  return out;
}

async function downloadAll() {
  if (state.batch) return;
  let cfg;
  try { cfg = settings(); } catch (e) { setError(e.message); return; }  // one snapshot for the whole batch
  const todo = state.items.filter((i) => !i.bad);
  if (!todo.length) { setError("no photo to download"); return; }
  setError("");
  state.batch = true;
  for (const it of todo) setItemStatus(it, "waiting", "");
  const bar = $("allProgress");
  bar.hidden = false; bar.max = todo.length; bar.value = 0;
  refresh();
  const results = new Map(), failed = [];
  let next = 0, done = 0;
  const worker = async () => {
    while (next < todo.length) {
      const it = todo[next++];
      it.busy = true;
      setItemStatus(it, "working", "enhancing");
      try {
        const r = await fetchResult(it, cfg);
        results.set(it, r);
        setItemStatus(it, "done", mb(r.blob.size) + (r.note ? "; " + r.note : ""));
      } catch (e) {
        failed.push(about(it, e.message));
        setItemStatus(it, "error", bare(it, e.message));
      } finally {
        it.busy = false;
        bar.value = ++done;
        setStatus("Enhancing for the zip: " + done + " of " + todo.length + " done (" + describe(cfg) + ")");
      }
    }
  };
  try {
    await Promise.all([worker(), worker()]);
    const taken = new Set(), entries = [];
    for (const it of todo) if (results.has(it)) { const r = results.get(it); entries.push({ name: uniqueName(r.name, taken), blob: r.blob }); }
    if (!entries.length) throw new Error("no photo could be enhanced");
    const zip = await makeZip(entries);
    const d = new Date(), pad = (x) => String(x).padStart(2, "0");
    const name = "csrnet_" + d.getFullYear() + pad(d.getMonth() + 1) + pad(d.getDate()) + "-" + pad(d.getHours()) + pad(d.getMinutes()) + pad(d.getSeconds()) + ".zip";
    saveBlob(zip, name);
    setStatus("Saved " + name + ": " + entries.length + " photo" + (entries.length > 1 ? "s" : "") + " (" + mb(zip.size) + ", " + describe(cfg) + ")" +
      (failed.length ? "; " + failed.length + " failed" : ""));
    if (failed.length) setError(failed.join(" · "));
  } catch (e) {
    setError(e.message);
  } finally {
    state.batch = false; bar.hidden = true;
    refresh();
  }
}

// ---------------------------------------------------------------- state -> controls
function refreshBusy() {
  const item = state.current, model = $("model").value;
  let text = "";
  if (item && !item.bad) {
    if (item.loadingBefore) text = "Reading " + item.name + " …";
    else if (item.pending.has(model)) text = "Computing the " + modelLabel(model) + " preview …";
    else if (state.zoom && (item.fullLoading || item.fullAfterLoading)) text = "Loading the full-size view …";
  }
  $("spinner").hidden = !text;
  $("spinnerText").textContent = text;
  $("stageWrap").setAttribute("aria-busy", String(!!text));
}

function refresh() {
  const item = state.current, ok = !!(item && !item.bad);
  $("enhance").disabled = !ok;
  $("download").disabled = !ok || item.busy;
  $("cube").disabled = !ok || item.busy;
  const hasPicture = !!(item && item.before && !item.bad);
  for (const b of document.querySelectorAll(".seg button")) b.disabled = !hasPicture;
  $("zoom").disabled = !hasPicture;
  $("dropText").textContent = item ? item.name + (state.items.length > 1 ? " (" + (state.items.indexOf(item) + 1) + " of " + state.items.length + ")" : "") : "or drop them here";
  $("empty").textContent = item && item.bad ? item.name + " cannot be read: " + item.bad : item ? "Reading " + item.name + " …" : "Choose a photo to see it here.";
  refreshQueue();
  refreshBusy();
}

const STATUS_TEXT = { new: "added", waiting: "waiting", working: "working", ready: "ready", done: "done", error: "cannot read" };
function refreshQueue() {
  const box = $("queueBox"), list = $("queue");
  box.hidden = state.items.length < 2;
  $("queueCount").textContent = state.items.length ? "(" + state.items.length + ")" : "";
  $("downloadAll").disabled = state.batch || !state.items.some((i) => !i.bad);
  $("clear").disabled = state.batch;
  // keep the rows (and the focus inside them) when nothing but their text changes
  const rows = new Map([...list.children].map((li) => [li.dataset.id, li]));
  const keep = new Set();
  for (const item of state.items) {
    let li = rows.get(String(item.id));
    if (!li) {
      li = document.createElement("li");
      li.dataset.id = String(item.id);
      li.innerHTML = '<button type="button" class="name"></button><span class="state"><span class="dot" aria-hidden="true"></span><span class="text"></span></span>' +
        '<button type="button" class="get">Download</button><button type="button" class="remove" title="Remove from the list">✕</button>';
      li.querySelector(".name").addEventListener("click", () => select(item));
      li.querySelector(".get").addEventListener("click", () => downloadItem(item));
      li.querySelector(".remove").addEventListener("click", () => removeItem(item));
      li.querySelector(".name").textContent = item.name;
      li.querySelector(".get").setAttribute("aria-label", "Download " + item.name);
      li.querySelector(".remove").setAttribute("aria-label", "Remove " + item.name);
    }
    list.appendChild(li);  // keeps the order
    keep.add(li);
    li.dataset.status = item.status;
    li.classList.toggle("current", item === state.current);
    li.querySelector(".name").setAttribute("aria-current", item === state.current ? "true" : "false");
    li.querySelector(".text").textContent = STATUS_TEXT[item.status] + (item.note ? ": " + item.note : "");
    li.querySelector(".get").disabled = !!item.bad || item.busy || state.batch;
    li.querySelector(".remove").disabled = item.busy || state.batch;
  }
  for (const li of [...list.children]) if (!keep.has(li)) li.remove();
}

function refreshOutputSummary() {
  const f = $("format");
  const parts = [f.value ? f.options[f.selectedIndex].textContent.split(" (")[0] : "same format"];
  const q = quality();
  if (q !== 95) parts.push("quality " + q);
  const le = longEdge();
  parts.push(le ? "long edge " + le + " px" : "full size");
  $("outputSummary").textContent = "— " + parts.join(", ");
}

function refreshModelHelp() {
  const m = state.models.get($("model").value);
  $("modelHelp").textContent = m ? useFor(m) : "";
}

// ---------------------------------------------------------------- events
$("choose").addEventListener("click", () => $("file").click());
$("file").addEventListener("change", (e) => { const files = [...e.target.files]; e.target.value = ""; addFiles(files); });
const drop = $("drop");
for (const ev of ["dragenter", "dragover"]) document.addEventListener(ev, (e) => { e.preventDefault(); drop.classList.add("over"); });
for (const ev of ["dragleave", "drop"]) document.addEventListener(ev, (e) => { e.preventDefault(); drop.classList.remove("over"); });
document.addEventListener("drop", (e) => { if (e.dataTransfer && e.dataTransfer.files.length) addFiles([...e.dataTransfer.files]); });

$("strength").addEventListener("input", () => {
  scheduleRender();
  if (state.zoom && state.current) ensureFull(state.current, 350);
});
$("model").addEventListener("change", () => {
  refreshModelHelp();
  const item = state.current;
  setError(item && item.bad ? about(item, item.bad) : "");  // a refused photo stays refused
  if (item && !item.bad && (state.live || item.after.size)) ensureAfter(item);
  if (state.zoom && item) ensureFull(item);
  render();
});
$("enhance").addEventListener("click", () => {
  const item = state.current;
  if (!item || item.bad) return;
  state.live = true;
  setError("");
  loadBefore(item);
  if (item.after.has($("model").value)) setStatus("The preview for " + modelLabel($("model").value) + " is on screen; move the strength slider, then Download.");
  ensureAfter(item);
});
$("download").addEventListener("click", () => downloadItem(state.current));
$("cube").addEventListener("click", () => exportCube(state.current));
$("downloadAll").addEventListener("click", downloadAll);
$("clear").addEventListener("click", () => {
  state.items = []; state.current = null; setError(""); setStatus("");
  select(null);
});
for (const id of ["format", "quality", "longEdge"]) $(id).addEventListener("input", refreshOutputSummary);
for (const b of document.querySelectorAll(".seg button")) b.addEventListener("click", () => setMode(b.dataset.mode));
$("zoom").addEventListener("click", () => toggleZoom());

// the divider: mouse, touch and pen through pointer events; keyboard arrows
const divider = $("divider");
function capture(el, id) { try { el.setPointerCapture(id); } catch (e) { /* a synthetic pointer */ } }
let dragging = null;
divider.addEventListener("pointerdown", (e) => {
  e.preventDefault(); e.stopPropagation();
  capture(divider, e.pointerId); dragging = "divider"; divider.focus({ preventScroll: true });
  moveDivider(e.clientX);
});
divider.addEventListener("pointermove", (e) => { if (dragging === "divider") moveDivider(e.clientX); });
for (const ev of ["pointerup", "pointercancel", "lostpointercapture"]) divider.addEventListener(ev, () => { dragging = null; });
divider.addEventListener("keydown", (e) => {
  const step = e.shiftKey ? 0.1 : 0.02;
  const moves = { ArrowLeft: -step, ArrowDown: -step, ArrowRight: step, ArrowUp: step, PageDown: -0.1, PageUp: 0.1 };
  if (e.key in moves) state.frac = clamp(state.frac + moves[e.key], 0, 1);
  else if (e.key === "Home") state.frac = 0;
  else if (e.key === "End") state.frac = 1;
  else return;
  e.preventDefault();
  updateDivider();
});

// the stage: in split view a press moves the divider there; at 100 % a mouse drag pans (touch scrolls natively)
const stage = $("stage");
let pan = null;
stage.addEventListener("pointerdown", (e) => {
  if (!state.current || !state.current.before || e.button !== 0) return;
  if (state.zoom) {
    state.anchor = null;
    if (e.pointerType !== "mouse") return;
    pan = { x: e.clientX, y: e.clientY, left: stage.scrollLeft, top: stage.scrollTop };
    capture(stage, e.pointerId); stage.classList.add("panning");
    e.preventDefault();
  } else if (state.mode === "split" && $("after").dataset.model) {
    dragging = "stage"; capture(stage, e.pointerId); moveDivider(e.clientX);
  }
});
stage.addEventListener("pointermove", (e) => {
  if (pan) { stage.scrollLeft = pan.left - (e.clientX - pan.x); stage.scrollTop = pan.top - (e.clientY - pan.y); }
  else if (dragging === "stage") moveDivider(e.clientX);
});
for (const ev of ["pointerup", "pointercancel", "lostpointercapture"]) stage.addEventListener(ev, () => { pan = null; dragging = null; stage.classList.remove("panning"); });
// a double click zooms there (its first click may have brought the divider under the pointer)
for (const el of [stage, divider]) el.addEventListener("dblclick", (e) => { e.preventDefault(); toggleZoom(e.clientX, e.clientY); });
stage.addEventListener("scroll", updateDivider, { passive: true });
stage.addEventListener("wheel", () => { state.anchor = null; }, { passive: true });

document.addEventListener("keydown", (e) => {
  if (e.ctrlKey || e.metaKey || e.altKey) return;
  const t = e.target;
  if (t && (t.tagName === "SELECT" || t.tagName === "TEXTAREA" || (t.tagName === "INPUT" && t.type !== "range" && t.type !== "file"))) return;
  if (e.key === "\\" || e.key === "b" || e.key === "B") { e.preventDefault(); toggleBefore(); }
  else if (e.key === "z" || e.key === "Z") { e.preventDefault(); toggleZoom(); }
});

let resizeFrame = 0;
window.addEventListener("resize", () => {
  if (!resizeFrame) resizeFrame = requestAnimationFrame(() => { resizeFrame = 0; layout(); });
});

// ---------------------------------------------------------------- start
async function getList(url, what) {
  let res;
  try { res = await fetch(url); } catch (e) { throw new Error(what + ": cannot reach the csrnet server"); }
  let list = null;
  try { list = await res.json(); } catch (e) { /* not JSON */ }
  if (!res.ok || !Array.isArray(list)) throw new Error(what + ": " + ((list && list.error) || res.status + " " + res.statusText));
  return list;
}

getList("/api/models", "models").then((list) => {
  const sel = $("model");
  sel.innerHTML = "";
  for (const m of list) {
    state.models.set(m.name, m);
    const o = document.createElement("option");
    o.value = m.name;
    o.textContent = prettyName(m) + (m.default ? " (default)" : "");
    o.title = useFor(m);
    o.selected = !!m.default;
    sel.appendChild(o);
  }
  refreshModelHelp();
  render();
}).catch((e) => setError(e.message));

getList("/api/formats", "formats").then((list) => {
  for (const f of list) {
    const o = document.createElement("option");
    o.value = f.key;
    o.textContent = f.name + (Array.isArray(f.depths) && f.depths.includes(16) ? " (8/16-bit)" : "");
    $("format").appendChild(o);
  }
  refreshOutputSummary();
}).catch((e) => setError(e.message));

refreshOutputSummary();
refresh();
