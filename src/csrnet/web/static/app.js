"use strict";
const PREVIEW = 1200;
const $ = (id) => document.getElementById(id);
let photo = null, beforeData = null, enhancedData = null, pending = false;

function setError(msg) { $("error").textContent = msg ? String(msg).split("\n")[0] : ""; }
function setStatus(msg) { $("status").textContent = msg || ""; }
function busy(on) {
  pending = on;
  for (const id of ["enhance", "download", "cube"]) $(id).disabled = on || !photo;
}

async function post(url, fields) {
  const body = new FormData();
  body.append("file", photo, photo.name);
  for (const [k, v] of Object.entries(fields)) if (v !== null && v !== "") body.append(k, v);
  let res;
  try { res = await fetch(url, { method: "POST", body }); }
  catch (e) { throw new Error("cannot reach the csrnet server (is `csrnet web` still running?)"); }
  if (!res.ok) {
    let msg = res.status + " " + res.statusText;
    try { msg = (await res.json()).error || msg; } catch (e) {}
    throw new Error(msg);
  }
  return res;
}

function fileName(res, fallback) {
  const cd = res.headers.get("Content-Disposition") || "";
  let m = /filename\*=UTF-8''([^;]+)/i.exec(cd);
  if (m) return decodeURIComponent(m[1]);
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
    const ctx = c.getContext("2d");
    ctx.drawImage(img, 0, 0);
    return ctx.getImageData(0, 0, c.width, c.height);
  } finally { URL.revokeObjectURL(url); }
}

function show(canvas, data) {
  canvas.width = data.width; canvas.height = data.height;
  canvas.getContext("2d").putImageData(data, 0, 0);
}

let frame = 0;
function blend() {
  frame = 0;
  const s = parseFloat($("strength").value);
  $("strengthValue").textContent = $("afterStrength").textContent = s.toFixed(2);
  if (!beforeData || !enhancedData || beforeData.width !== enhancedData.width || beforeData.height !== enhancedData.height) return;
  const b = beforeData.data, e = enhancedData.data;
  const out = new ImageData(beforeData.width, beforeData.height);
  const o = out.data;  // Uint8ClampedArray: rounds and clips to 0..255
  for (let i = 0; i < b.length; i += 4) {
    o[i] = b[i] + s * (e[i] - b[i]);
    o[i + 1] = b[i + 1] + s * (e[i + 1] - b[i + 1]);
    o[i + 2] = b[i + 2] + s * (e[i + 2] - b[i + 2]);
    o[i + 3] = 255;
  }
  show($("after"), out);
}

async function choose(file) {
  if (!file || pending) return;
  photo = file; beforeData = enhancedData = null;
  $("dropText").textContent = file.name;
  setError(""); busy(true); setStatus("Reading " + file.name + " …");
  for (const id of ["before", "after"]) { $(id).width = 0; $(id).height = 0; }
  try {
    const res = await post("/api/enhance", { model: $("model").value, strength: 0, preview: PREVIEW, format: "jpg", quality: 92 });
    beforeData = await toImageData(await res.blob());
    show($("before"), beforeData);
    setStatus(file.name + ": " + "press Enhance");
  } catch (e) { setError(e.message); setStatus(""); }
  busy(false);
}

async function enhancePreview() {
  if (!photo || pending) return;
  setError(""); busy(true); setStatus("Enhancing preview …");
  try {
    const t = performance.now();
    const res = await post("/api/enhance", { model: $("model").value, strength: 1, preview: PREVIEW, format: "jpg", quality: 92 });
    enhancedData = await toImageData(await res.blob());
    blend();
    setStatus("Preview ready in " + Math.round(performance.now() - t) + " ms; move the strength slider, then Download.");
  } catch (e) { setError(e.message); setStatus(""); }
  busy(false);
}

async function save(url, fields, fallback, what) {
  if (!photo || pending) return;
  setError(""); busy(true); setStatus(what + " …");
  try {
    const t = performance.now();
    const res = await post(url, fields);
    const blob = await res.blob();
    const name = fileName(res, fallback);
    const a = document.createElement("a");
    a.href = URL.createObjectURL(blob); a.download = name;
    document.body.appendChild(a); a.click(); a.remove();
    setTimeout(() => URL.revokeObjectURL(a.href), 10000);
    setStatus("Saved " + name + " (" + (blob.size / 1e6).toFixed(2) + " MB, " + Math.round(performance.now() - t) + " ms)");
  } catch (e) { setError(e.message); setStatus(""); }
  busy(false);
}

$("file").addEventListener("change", (e) => choose(e.target.files[0]));
const drop = $("drop");
for (const ev of ["dragenter", "dragover"]) document.addEventListener(ev, (e) => { e.preventDefault(); drop.classList.add("over"); });
for (const ev of ["dragleave", "drop"]) document.addEventListener(ev, (e) => { e.preventDefault(); drop.classList.remove("over"); });
document.addEventListener("drop", (e) => { if (e.dataTransfer && e.dataTransfer.files.length) choose(e.dataTransfer.files[0]); });
$("strength").addEventListener("input", () => { if (!frame) frame = requestAnimationFrame(blend); });
$("model").addEventListener("change", () => { enhancedData = null; if (photo) enhancePreview(); });
$("enhance").addEventListener("click", enhancePreview);
$("download").addEventListener("click", () => save("/api/enhance",
  { model: $("model").value, strength: $("strength").value, format: $("format").value, quality: 95 }, "photo_csrnet", "Enhancing at full resolution"));
$("cube").addEventListener("click", () => save("/api/lut",
  { model: $("model").value, strength: $("strength").value, size: $("lutSize").value }, "look_csrnet.cube", "Baking the .cube LUT"));

fetch("/api/models").then((r) => r.json()).then((list) => {
  if (!Array.isArray(list)) throw new Error(list.error || "cannot list models");
  const sel = $("model"); sel.innerHTML = "";
  for (const m of list) {
    const o = document.createElement("option");
    o.value = m.name;
    o.textContent = m.name + " (" + m.arch + ", " + m.parameters.toLocaleString() + " params)";
    o.title = m.description; o.selected = !!m.default;
    sel.appendChild(o);
  }
}).catch((e) => setError("models: " + e.message));

fetch("/api/formats").then((r) => r.json()).then((list) => {
  if (!Array.isArray(list)) throw new Error(list.error || "cannot list formats");
  for (const f of list) {
    const o = document.createElement("option");
    o.value = f.key;
    o.textContent = f.name + (f.depths.includes(16) ? " (8/16-bit)" : "");
    $("format").appendChild(o);
  }
}).catch((e) => setError("formats: " + e.message));
