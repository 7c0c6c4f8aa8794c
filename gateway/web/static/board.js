// Night staff alert board: live list over server-sent events, acknowledge and resolve.
// All visible text comes from messages.json (Swedish by default, ?lang=en for English).
"use strict";
// Token, language, messages and call() come from common.js.
const OUTCOMES = ["visited", "called", "no_action_needed", "false_alarm", "technical"];
const alerts = new Map();
const residents = new Map();
let audio = null;

async function api(path, options = {}) {
  return (await call(path, options)).json();
}

function beep() {
  try {
    audio = audio || new AudioContext();
    const o = audio.createOscillator(), g = audio.createGain();
    o.frequency.value = 880; o.connect(g); g.connect(audio.destination);
    g.gain.setValueAtTime(0.3, audio.currentTime);
    o.start(); o.stop(audio.currentTime + 0.6);
  } catch (e) { /* no audio device */ }
  document.body.dataset.lastSound = String(Date.now());
}

async function resident(id) {
  if (!residents.has(id)) residents.set(id, api("/api/residents/" + encodeURIComponent(id)));
  return residents.get(id);
}

function render() {
  const list = document.getElementById("alerts");
  const shown = [...alerts.values()].filter(a => a.status !== "resolved")
    .sort((a, b) => a.priority - b.priority || b.raised_ms - a.raised_ms);
  document.getElementById("empty").hidden = shown.length > 0;
  list.replaceChildren(...shown.map(card));
}

function card(a) {
  const li = document.getElementById("alert-tpl").content.firstElementChild.cloneNode(true);
  li.dataset.id = a.id; li.dataset.kind = a.kind; li.dataset.priority = a.priority;
  li.dataset.status = a.status;
  li.querySelector(".prio").textContent = t("priority") + " " + a.priority;
  li.querySelector(".kind").textContent = t("kind_" + a.kind);
  const esc = li.querySelector(".esc"); esc.hidden = !a.escalated; esc.textContent = t("escalated");
  li.querySelector(".name").textContent = a.resident_id;
  li.querySelector(".name").href = "/resident?id=" + encodeURIComponent(a.resident_id) + (lang === "en" ? "&lang=en" : "");
  li.querySelector(".room").textContent = t("room") + ": " + (a.room || "–");
  li.querySelector(".status").textContent = t("status_" + a.status) +
    (a.acknowledged_by ? " (" + t("acknowledged_by") + " " + a.acknowledged_by + ")" : "");
  const when = li.querySelector(".when");
  when.dateTime = new Date(a.event_ms).toISOString();
  when.textContent = new Date(a.event_ms).toLocaleTimeString(lang === "sv" ? "sv-SE" : "en-GB");
  li.querySelector(".visit").textContent = a.during_visit ? " · " + t("during_visit") + " " + a.during_visit : "";
  li.querySelector(".plan-label").textContent = t("what_to_do");
  li.querySelector(".goals-label").textContent = t("goals");
  resident(a.resident_id).then(r => {
    li.querySelector(".name").textContent = r.name;
    li.querySelector(".plan").textContent = r.action_plan;
    li.querySelector(".goals").replaceChildren(...r.goals.map(g => {
      const item = document.createElement("li"); item.textContent = g.text; return item; }));
  }).catch(() => {});
  const ack = li.querySelector(".ack");
  ack.textContent = t("ack"); ack.hidden = a.status !== "open";
  ack.onclick = () => act(a.id, "ack", {});
  const sel = li.querySelector(".outcome");
  sel.setAttribute("aria-label", t("outcome"));
  sel.replaceChildren(...OUTCOMES.map(o => { const opt = document.createElement("option");
    opt.value = o; opt.textContent = t("outcome_" + o); return opt; }));
  const res = li.querySelector(".resolve");
  res.textContent = t("resolve");
  res.onclick = () => act(a.id, "resolve", {outcome: sel.value});
  return li;
}

async function act(id, what, body) {
  try {
    const a = await api(`/api/alerts/${id}/${what}`, {method: "POST", body: JSON.stringify(body)});
    alerts.set(a.id, a); render();
  } catch (e) { alert(t("error") + ": " + e.message); }
}

function live(up) {
  document.getElementById("lost").hidden = up;
  const badge = document.getElementById("live");
  badge.classList.toggle("down", !up);
}

// --- tonight's digital checks and the morning summary ---------------------------------
const unitParam = params.get("unit");
const q = unitParam ? "?unit=" + encodeURIComponent(unitParam) : "";
let checksTimer = null;
let shownNight = null;  // the summary covers the night the check list shows

// Check times in the site's time zone (the phone may be set to another).
const hhmm = (iso, tz) => new Date(iso).toLocaleTimeString(lang === "sv" ? "sv-SE" : "en-GB",
  {hour: "2-digit", minute: "2-digit", timeZone: tz});

async function loadChecks() {
  const data = await api("/api/supervision/tonight" + q);
  shownNight = data.residents.length ? data.residents[0].night : null;
  const list = document.getElementById("checks");
  document.getElementById("checks-empty").hidden = data.residents.length > 0;
  list.replaceChildren(...data.residents.map(r => {
    const li = document.createElement("li");
    li.className = "resident-checks"; li.dataset.resident = r.resident_id;
    const name = document.createElement("strong"); name.className = "name";
    name.textContent = r.resident_id;
    resident(r.resident_id).then(x => { name.textContent = x.name; }).catch(() => {});
    const ol = document.createElement("ol");
    ol.replaceChildren(...r.checks.map(c => {
      const item = document.createElement("li");
      item.className = "check"; item.dataset.due = c.due; item.dataset.status = c.status;
      item.dataset.outcome = c.outcome || ""; item.dataset.late = String(c.late);
      const words = c.outcome ? t("outcome_" + c.outcome) : t("check_" + c.status);
      item.textContent = hhmm(c.due, data.timezone) + " " + words +
        (c.status === "rechecking" ? " – " + t("check_rechecking") : "");
      item.title = c.entries.flatMap(e => e.reasons).join("; ");
      if (c.late) { const l = document.createElement("span"); l.className = "late";
        l.textContent = " (" + t("late") + ")"; item.append(l); }
      return item;
    }));
    li.append(name, ol);
    return li;
  }));
  document.body.dataset.checksLoaded = String(Date.now());
  if (document.getElementById("summary").open) loadSummary();
}

async function loadSummary() {
  const nightQ = shownNight ? (q ? "&" : "?") + "night=" + shownNight : "";
  const s = await api("/api/supervision/summary" + q + nightQ);
  const cols = [["digital_checks", "sum_checks"], ["ok", "sum_ok"], ["attention", "sum_attention"],
    ["unknown", "sum_unknown"], ["late", "sum_late"], ["physical_visits_made", "sum_visits_made"],
    ["physical_visits_avoided", "sum_visits_avoided"]];
  const row = (label, r) => { const tr = document.createElement("tr");
    const cells = [label, ...cols.map(([k]) => String(r[k])),
      String(Object.values(r.alerts).reduce((a, b) => a + b, 0))];
    tr.replaceChildren(...cells.map(c => { const td = document.createElement("td");
      td.textContent = c; return td; })); return tr; };
  const head = document.createElement("tr");
  head.replaceChildren(...[t("resident") + " (" + s.night + ")", ...cols.map(([, l]) => t(l)),
    t("sum_alerts")].map(c => { const th = document.createElement("th"); th.textContent = c; return th; }));
  const table = document.getElementById("summary-table");
  table.tHead.replaceChildren(head);
  table.tBodies[0].replaceChildren(...s.residents.map(r => {
    const tr = row(r.resident_id, r);
    resident(r.resident_id).then(x => { tr.firstChild.textContent = x.name; }).catch(() => {});
    return tr;
  }), row(t("total"), s.total));
}

function checksSoon() {  // several entries arrive together: one reload
  clearTimeout(checksTimer);
  checksTimer = setTimeout(() => loadChecks().catch(() => live(false)), 200);
}

async function startChecks() {
  await loadChecks();
  document.getElementById("summary").addEventListener("toggle", (ev) => {
    if (ev.target.open) loadSummary().catch(() => {}); });
  openStream("/api/supervision/stream", {check: checksSoon}, {onError: () => live(false)});
  setInterval(checksSoon, 60_000);  // pending checks become due as time passes
}

async function start() {
  await loadMessages();  // shows the login notice when there is no token
  document.getElementById("sound").onclick = () => { audio = audio || new AudioContext(); audio.resume(); };
  if (!token) return;
  const first = await api("/api/alerts?status=unresolved");
  for (const a of first.alerts) alerts.set(a.id, a);
  render();
  openStream("/api/alerts/stream", {alert: (ev) => {
    const msg = JSON.parse(ev.data);
    const isNew = !alerts.has(msg.alert.id);
    alerts.set(msg.alert.id, msg.alert);
    render();
    // A new priority 1 alert, or one whose condition has become priority 1 (a bed exit
    // with no movement since), sounds.
    if (msg.alert.priority === 1 && ((msg.transition === "raised" && isNew) ||
                                     msg.transition === "priority_raised")) beep();
    live(true);
  }}, {since: first.last_event_id, onOpen: () => live(true), onError: () => live(false)});
  startChecks().catch((e) => console.warn("checks:", e.message));
}
start();
