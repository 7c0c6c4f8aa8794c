// Shared by the board, the resident and the report pages: token, language, messages,
// the site (unit name, time zone, room names), dates in Swedish form, API calls whose
// errors are said in the page's language, the login form and event streams.
"use strict";
const params = new URLSearchParams(location.search);
const lang = params.get("lang") === "en" ? "en" : "sv";
const hash = new URLSearchParams(location.hash.slice(1));
if (hash.get("token")) { localStorage.setItem("tillsyn-token", hash.get("token")); history.replaceState(null, "", location.pathname + location.search); }
const token = localStorage.getItem("tillsyn-token");
let T = {};
let site = {timezone: "Europe/Stockholm", rooms: {}, units: {}, unit: null, unit_name: null, role: null};
const t = (key) => (key in T ? T[key] : key);

// Messages first; then, when logged in, the site. Pages show their content only once
// both are known: a logged-out page shows the login and nothing else.
async function loadMessages() {
  T = (await (await fetch("/static/messages.json")).json())[lang];
  document.documentElement.lang = lang;
  for (const el of document.querySelectorAll("[data-i18n]")) el.textContent = t(el.dataset.i18n);
  for (const el of document.querySelectorAll("[data-i18n-placeholder]")) el.placeholder = t(el.dataset.i18nPlaceholder);
  for (const el of document.querySelectorAll("[data-i18n-label]")) el.setAttribute("aria-label", t(el.dataset.i18nLabel));
  for (const a of document.querySelectorAll("a[data-keep-lang]")) if (lang === "en") a.search = "?lang=en";
  if (!token) { showLogin("login_needed"); return false; }
  site = await (await call("/api/auth/me")).json();
  addLogout();
  document.body.classList.add("logged-in");
  return true;
}

// --- words and times ---------------------------------------------------------------------

function roomName(room) {
  if (!room) return "–";
  const own = site.rooms[room];
  if (own) return own[lang];
  return T["room_" + room] || room;
}

function unitName(unit) { return (site.units && site.units[unit]) || unit; }

const MONTHS = {sv: ["jan.", "feb.", "mars", "apr.", "maj", "juni", "juli", "aug.", "sep.", "okt.", "nov.", "dec."],
                en: ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"]};

// The parts of a moment on the site's clock (the phone may be set to another zone).
function parts(ms) {
  const f = new Intl.DateTimeFormat("en-GB", {timeZone: site.timezone, year: "numeric", month: "2-digit",
    day: "2-digit", hour: "2-digit", minute: "2-digit", hourCycle: "h23"});
  const p = Object.fromEntries(f.formatToParts(new Date(ms)).map(x => [x.type, x.value]));
  return {y: +p.year, m: +p.month, d: +p.day, hh: p.hour, mm: p.minute};
}
const dayKey = (p) => Date.UTC(p.y, p.m - 1, p.d) / 86400000;  // days since 1970 of a local date
const hhmm = (ms) => { const p = parts(ms); return p.hh + ":" + p.mm; };

// The night a moment belongs to: its evening's date (before noon: the evening before).
function nightOf(ms) { const p = parts(ms); return dayKey(p) - (+p.hh < 12 ? 1 : 0); }

function num(x, digits = 1) {  // 3.25 -> "3,3" in Swedish, "3.3" in English
  return Number(x).toLocaleString(lang === "en" ? "en-GB" : "sv-SE",
    {minimumFractionDigits: digits, maximumFractionDigits: digits});
}

function dateText(iso) {  // "2026-12-04" -> "4 dec. 2026"
  const [y, m, d] = iso.slice(0, 10).split("-").map(Number);
  return d + " " + MONTHS[lang][m - 1] + " " + y;
}

// "02:24" tonight, "i går 23:14", "4 dec. 02:24" (with the year when it is not this one).
function whenText(ms) {
  const p = parts(ms), now = parts(Date.now());
  const days = dayKey(now) - dayKey(p);
  if (nightOf(ms) === nightOf(Date.now()) || days === 0) return p.hh + ":" + p.mm;
  if (days === 1) return t("yesterday") + " " + p.hh + ":" + p.mm;
  return p.d + " " + MONTHS[lang][p.m - 1] + (p.y !== now.y ? " " + p.y : "") + " " + p.hh + ":" + p.mm;
}

function weekText(label) {  // "2026-W44" -> "v. 44"
  const w = String(label).split("-W")[1];
  return w ? (lang === "en" ? "week " : "v. ") + Number(w) : label;
}

// --- calls and errors ------------------------------------------------------------------------

// An API error said in the page's language: never the API's own English text.
function errorText(e) {
  if (!e || e.status === undefined) return t("err_network");
  const known = {400: "err_400", 401: "err_401", 403: "err_403", 404: "err_404", 409: "err_409",
    413: "err_413", 422: "err_422", 429: "err_429", 503: "err_503"};
  return t(known[e.status] || "err_500");
}

async function call(path, options = {}) {
  let r;
  try {
    r = await fetch(path, {...options, headers: {"Authorization": "Bearer " + token,
      "Content-Type": "application/json", ...(options.headers || {})}});
  } catch (err) {
    const e = new Error("network"); e.status = undefined; throw e;
  }
  if (r.status === 401) {  // expired or revoked: log in again
    localStorage.removeItem("tillsyn-token");
    showLogin("login_expired");
  }
  if (!r.ok) {
    const e = new Error(String(r.status)); e.status = r.status;
    try { e.detail = (await r.json()).detail; } catch (x) { /* not JSON */ }
    throw e;
  }
  return r;
}

function showError(e) {
  const box = document.getElementById("error");
  box.textContent = t("error") + ": " + errorText(e);
  box.hidden = false;
}

function clearError() { const box = document.getElementById("error"); if (box) box.hidden = true; }

// --- login -------------------------------------------------------------------------------------

// The login form (staff id + password -> POST /api/auth/login); built here so the three
// pages share it. Everything else on the page stays hidden until logged in.
function showLogin(reason) {
  document.body.classList.remove("logged-in");
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
    let r;
    try {
      r = await fetch("/api/auth/login", {method: "POST",
        headers: {"Content-Type": "application/json"},
        body: JSON.stringify({staff_id: form.staff_id.value.trim(), password: form.password.value})});
    } catch (err) { problem.textContent = t("err_network"); problem.hidden = false; return; }
    if (r.ok) {
      localStorage.setItem("tillsyn-token", (await r.json()).token);
      location.reload();
      return;
    }
    problem.textContent = r.status === 429
      ? t("login_wait").replace("{s}", r.headers.get("Retry-After") || "60")
      : t(r.status === 401 ? "login_wrong" : r.status === 422 ? "login_incomplete" : "err_500");
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
  b.className = "plain";
  b.textContent = t("logout");
  b.addEventListener("click", () => { localStorage.removeItem("tillsyn-token"); location.reload(); });
  header.append(b);
}

// --- reports and downloads ---------------------------------------------------------------------

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
