// anatomy --html: draws the dump from the page's data, then checks what it
// drew: every byte of the file once, in a field that claims it, as its own
// hex. The verdict goes into #check, for the reader and for the tests.
"use strict";
const check = document.getElementById("check");
function verdict(v, text) {
  check.dataset.verdict = v;
  check.textContent = text;
}
// An error in the script, now or later, is shown where the verdict is.
window.addEventListener("error", (e) => verdict("error", "self-check: the page's script failed: " + e.message));

const D = JSON.parse(document.getElementById("data").textContent);
const hex = D.hex.join("");
const dump = document.getElementById("dump");
const info = document.getElementById("info");
const hx = (n) => "0x" + n.toString(16);
const width = Math.max(4, (D.size - 1).toString(16).length);
const esc = (s) => s.replace(/[&<>"]/g, (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;" })[c]);

// Lines of 16 bytes, each byte's cell made from the span that draws it:
// lines are found by offset, so overlapping or missing spans show as
// extra or missing cells, which the check then counts. A long run of
// lines that only go on with one field (the zeros that pad a page) is
// folded away under a <details>, its cells still there to be checked.
function draw() {
  const lines = [];
  const line = (n) => lines[n] || (lines[n] = { cells: "", text: "", notes: "", only: undefined });
  let heading = -1;
  D.spans.forEach(([start, len, f], i) => {
    const [, , kind, h, name, value, meaning] = D.fields[f];
    const cls = "b k" + kind + (i % 2 ? " z" : "");
    for (let o = start; o < start + len; o++) {
      const b = hex.substr(2 * o, 2);
      const c = parseInt(b, 16);
      const l = line(o >> 4);
      l.cells += `<span class="${cls}" data-o="${o}" data-f="${f}">${b}</span>`;
      l.text += c >= 0x20 && c < 0x7f ? esc(String.fromCharCode(c)) : ".";
      l.only = l.only === undefined || l.only === f ? f : null;
    }
    const l = line(start >> 4);
    if (h !== heading) l.notes += `<div class="hd">${esc(D.headings[h])}</div>`;
    heading = h;
    const shown = value === null ? "" : " = " + esc(value);
    l.notes += `<div class="nt k${kind}" data-f="${f}"><b>${esc(name)}</b>${shown} <span>${esc(meaning)}</span></div>`;
  });
  const html = [];
  const quiet = (n) => lines[n] && !lines[n].notes && lines[n].only !== null;
  for (let n = 0; n < lines.length; n++) {
    let end = n;
    while (quiet(end) && lines[end].only === lines[n].only) end++;
    if (end - n > 4) {
      const [, , kind, , name] = D.fields[lines[n].only];
      html.push(`<details><summary class="k${kind}">${end - n} more lines of ${esc(name)}, ${hx(n * 16)} up to ${hx(end * 16)}: click to show</summary>`);
      for (; n < end; n++) html.push(row(lines[n], n));
      html.push("</details>");
    }
    if (lines[n]) html.push(row(lines[n], n));
  }
  dump.innerHTML = html.join("");
}

function row(l, n) {
  const at = "0x" + (n * 16).toString(16).padStart(width, "0");
  return `<div class="r"><span class="a">${at}</span><span class="h">${l.cells}</span><span class="t">${l.text}</span><div class="n">${l.notes}</div></div>`;
}

// The field pointed at (or clicked, until clicked again) is outlined in
// the dump and explained in the panel.
function wire() {
  const parts = [];
  for (const el of dump.querySelectorAll("[data-f]")) (parts[el.dataset.f] ||= []).push(el);
  let shown = null;
  let pinned = false;
  const show = (f) => {
    for (const el of parts[shown] || []) el.classList.remove("on");
    shown = f;
    for (const el of parts[f] || []) el.classList.add("on");
    const [offset, size, kind, h, name, value, meaning] = D.fields[f];
    const bytes = hex.substr(2 * offset, 2 * Math.min(size, 32)).replace(/(..)(?!$)/g, "$1 ");
    info.innerHTML =
      `<span class="kd k${kind}">${esc(D.kinds[kind])}</span><h2>${esc(name)}</h2><p>${esc(D.headings[h])}</p><dl>` +
      `<dt>offset</dt><dd>${hx(offset)}</dd><dt>size</dt><dd>${size} byte${size === 1 ? "" : "s"}</dd>` +
      (value === null ? "" : `<dt>value</dt><dd>${esc(value)}</dd>`) +
      `<dt>bytes</dt><dd>${bytes}${size > 32 ? " …" : ""}</dd></dl><p>${esc(meaning)}</p>`;
  };
  const target = (e) => e.target.closest && e.target.closest("[data-f]");
  dump.addEventListener("mouseover", (e) => {
    const t = target(e);
    if (t && !pinned) show(+t.dataset.f);
  });
  dump.addEventListener("click", (e) => {
    const t = target(e);
    if (!t) return;
    pinned = !(pinned && shown === +t.dataset.f);
    show(+t.dataset.f);
  });
  info.innerHTML = "<p>Point at a byte or a field: what it is, where, and why appear here. Click to keep one.</p>";
  // page.html#0x18 opens on the field that holds byte 0x18.
  const m = /^#0x([0-9a-f]+)$/i.exec(location.hash);
  const cell = m && dump.querySelector(`.b[data-o="${parseInt(m[1], 16)}"]`);
  if (cell) {
    pinned = true;
    show(+cell.dataset.f);
    cell.closest("details")?.setAttribute("open", "");
    cell.scrollIntoView({ block: "center" });
  }
}

// Counts, per byte of the file, the cells drawn for it and their fields.
function selfCheck() {
  const n = D.size;
  const fieldsAt = Array.from({ length: n }, () => []);
  const bad = [];
  if (hex.length !== 2 * n) bad.push(`the page holds ${hex.length / 2} bytes, not ${n}`);
  const cells = dump.querySelectorAll(".b");
  if (cells.length !== n) bad.push(`${cells.length} byte cells for ${n} bytes`);
  for (const c of cells) {
    const o = Number(c.dataset.o);
    const field = D.fields[Number(c.dataset.f)];
    if (!Number.isInteger(o) || o < 0 || o >= n) {
      bad.push(`a cell for byte ${c.dataset.o}, outside the file`);
    } else if (!field) {
      bad.push(`byte ${hx(o)} is drawn for field ${c.dataset.f}, which does not exist`);
      fieldsAt[o].push("?");
    } else {
      fieldsAt[o].push(field[4]);
      if (o < field[0] || o >= field[0] + field[1]) bad.push(`byte ${hx(o)} is drawn in ${field[4]}, which does not cover it`);
      if (c.textContent !== hex.substr(2 * o, 2)) bad.push(`byte ${hx(o)} is drawn as ${c.textContent}`);
    }
  }
  fieldsAt.forEach((names, o) => {
    if (names.length === 0) bad.push(`byte ${hx(o)} is in no field`);
    if (names.length > 1) bad.push(`byte ${hx(o)} is in ${names.length} fields: ${names.join(", ")}`);
  });
  if (bad.length) {
    verdict("fail", `self-check FAILED, ${bad.length} problem${bad.length === 1 ? "" : "s"}: ${bad.slice(0, 8).join("; ")}`);
  } else {
    verdict("ok", `self-check: all ${n} bytes drawn, each in exactly one of ${D.fields.length} fields`);
  }
}

try {
  draw();
  wire();
  selfCheck();
} catch (e) {
  verdict("error", "self-check: the page's script failed: " + e);
}
