// Shared by the board, the resident and the report pages: token, language, messages,
// API calls.
"use strict";
const params = new URLSearchParams(location.search);
const lang = params.get("lang") === "en" ? "en" : "sv";
const hash = new URLSearchParams(location.hash.slice(1));
if (hash.get("token")) { localStorage.setItem("tillsyn-token", hash.get("token")); history.replaceState(null, "", location.pathname + location.search); }
const token = localStorage.getItem("tillsyn-token");
let T = {};
const t = (key) => T[key] || key;

async function loadMessages() {
  T = (await (await fetch("/static/messages.json")).json())[lang];
  document.documentElement.lang = lang;
  for (const el of document.querySelectorAll("[data-i18n]")) el.textContent = t(el.dataset.i18n);
  for (const el of document.querySelectorAll("[data-i18n-placeholder]")) el.placeholder = t(el.dataset.i18nPlaceholder);
  if (!token) document.getElementById("login").hidden = false;
}

async function call(path, options = {}) {
  const r = await fetch(path, {...options, headers: {"Authorization": "Bearer " + token,
    "Content-Type": "application/json", ...(options.headers || {})}});
  if (!r.ok) { const e = new Error(r.status + " " + (await r.text())); e.status = r.status; throw e; }
  return r;
}

function showError(e) {
  const box = document.getElementById("error");
  box.textContent = t("error") + ": " + e.message;
  box.hidden = false;
}

function showReport(frame, html) {
  frame.srcdoc = html;
}

async function download(path, name) {
  const blob = await (await call(path)).blob();
  const a = document.createElement("a");
  a.href = URL.createObjectURL(blob); a.download = name; a.click();
  URL.revokeObjectURL(a.href);
}
