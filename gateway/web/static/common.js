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
  if (!token) showLogin("login_needed");
  else addLogout();
}

// The login form (staff id + password -> POST /api/auth/login); built here so the three
// pages share it. Texts come from the message catalogue.
function showLogin(reason) {
  const box = document.getElementById("login");
  box.replaceChildren();
  box.hidden = false;
  const form = document.createElement("form");
  form.id = "login-form";
  const field = (name, type, auto) => {
    const label = document.createElement("label");
    const span = document.createElement("span");
    span.textContent = t("login_" + name);
    const input = document.createElement("input");
    Object.assign(input, {name, type, autocomplete: auto, required: true});
    label.append(span, input);
    return label;
  };
  const why = document.createElement("p");
  why.textContent = t(reason);
  const submit = document.createElement("button");
  submit.type = "submit";
  submit.textContent = t("login_submit");
  const problem = document.createElement("p");
  problem.className = "login-error";
  problem.setAttribute("role", "alert");
  problem.hidden = true;
  form.append(why, field("staff_id", "text", "username"),
              field("password", "password", "current-password"), submit, problem);
  form.addEventListener("submit", async (ev) => {
    ev.preventDefault();
    const r = await fetch("/api/auth/login", {method: "POST",
      headers: {"Content-Type": "application/json"},
      body: JSON.stringify({staff_id: form.staff_id.value.trim(), password: form.password.value})});
    if (r.ok) {
      localStorage.setItem("tillsyn-token", (await r.json()).token);
      location.reload();
      return;
    }
    problem.textContent = r.status === 429
      ? t("login_wait").replace("{s}", r.headers.get("Retry-After") || "60")
      : t(r.status === 401 ? "login_wrong" : "error");
    problem.hidden = false;
    form.password.value = "";
  });
  box.append(form);
}

function addLogout() {
  const header = document.querySelector("header");
  if (!header || document.getElementById("logout")) return;
  const b = document.createElement("button");
  b.id = "logout";
  b.type = "button";
  b.textContent = t("logout");
  b.addEventListener("click", () => { localStorage.removeItem("tillsyn-token"); location.reload(); });
  header.append(b);
}

async function call(path, options = {}) {
  const r = await fetch(path, {...options, headers: {"Authorization": "Bearer " + token,
    "Content-Type": "application/json", ...(options.headers || {})}});
  if (r.status === 401) {  // expired or revoked: log in again
    localStorage.removeItem("tillsyn-token");
    showLogin("login_expired");
  }
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

// An event stream opened with a short-lived ticket (POST /api/auth/stream-ticket): the
// bearer token never goes into a URL. When the stream breaks (network, restart, the ticket
// expired on reconnect) a new ticket is fetched and the stream reopened from the last
// event seen, after 2 s, 4 s, ... up to 30 s.
function openStream(path, events, {since = null, onOpen = () => {}, onError = () => {}} = {}) {
  let last = since;
  let delay = 2000;
  let es = null;
  async function connect() {
    try {
      const r = await call("/api/auth/stream-ticket", {method: "POST"});
      const {ticket} = await r.json();
      const q = new URLSearchParams({ticket});
      if (last !== null) q.set("since", last);
      es = new EventSource(`${path}?${q}`);
    } catch (e) {
      onError(e);
      setTimeout(connect, delay);
      delay = Math.min(delay * 2, 30000);
      return;
    }
    es.onopen = () => { delay = 2000; onOpen(); };
    es.onerror = () => {
      onError();
      es.close();
      setTimeout(connect, delay);
      delay = Math.min(delay * 2, 30000);
    };
    for (const [name, handler] of Object.entries(events)) {
      es.addEventListener(name, (ev) => { if (ev.lastEventId) last = ev.lastEventId; handler(ev); });
    }
  }
  connect();
}
