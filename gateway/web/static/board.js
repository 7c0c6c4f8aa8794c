// Night staff alert board: live list over server-sent events, acknowledge (undo within
// 10 s), then resolve with a chosen outcome; tonight's digital checks; Web Push.
// All visible text comes from messages.json (Swedish by default, ?lang=en for English);
// every time is on the site's clock.
"use strict";
// Token, language, messages, site, formatting and call() come from common.js.
const OUTCOMES = ["visited", "called", "no_action_needed", "false_alarm", "technical"];
const NOTE_NEEDED = new Set(["false_alarm", "technical"]);
const UNDO_MS = 10000;
const alerts = new Map();
const residents = new Map();
const drafts = new Map();  // alert id -> {outcome, note}: kept across live updates
const undoUntil = new Map();  // alert id -> when the undo offer ends (ms)
let audio = null;
let focusId = params.get("alert");

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

// Current alerts first (priority, newest), then those of earlier nights under "Äldre".
function render() {
  const shown = [...alerts.values()].filter(a => a.status !== "resolved")
    .sort((a, b) => a.priority - b.priority || b.event_ms - a.event_ms);
  const tonight = nightOf(Date.now());
  const current = shown.filter(a => nightOf(a.event_ms) >= tonight);
  const older = shown.filter(a => nightOf(a.event_ms) < tonight);
  const expanded = new Set();  // the first card of each resident shows plan and goals
  const cards = (list) => list.map(a => {
    const first = !expanded.has(a.resident_id);
    expanded.add(a.resident_id);
    return card(a, first);
  });
  document.getElementById("empty").hidden = shown.length > 0;
  document.getElementById("alerts").replaceChildren(...cards(current));
  document.getElementById("older").replaceChildren(...cards(older));
  document.getElementById("older-section").hidden = older.length === 0;
  document.getElementById("older-count").textContent = String(older.length);
  if (focusId && alerts.has(Number(focusId))) {
    const el = document.querySelector(`li.alert[data-id="${Number(focusId)}"]`);
    if (el) {
      el.classList.add("focus");
      if (el.closest("#older-section")) document.getElementById("older-section").open = true;
      el.scrollIntoView({block: "center"});
    }
  }
}

function card(a, expanded) {
  const li = document.getElementById("alert-tpl").content.firstElementChild.cloneNode(true);
  li.dataset.id = a.id; li.dataset.kind = a.kind; li.dataset.priority = a.priority;
  li.dataset.status = a.status;
  li.querySelector(".prio").textContent = t("priority") + " " + a.priority;
  li.querySelector(".kind").textContent = t("kind_" + a.kind);
  const esc = li.querySelector(".esc"); esc.hidden = !a.escalated; esc.textContent = t("escalated");
  const name = li.querySelector(".name");
  name.textContent = t("resident");
  name.href = "/resident?id=" + encodeURIComponent(a.resident_id) + (lang === "en" ? "&lang=en" : "");
  li.querySelector(".room").textContent = t("room") + ": " + roomName(a.room);
  li.querySelector(".status").textContent = a.status === "acknowledged" && a.acknowledged_by
    ? t("acknowledged_by") + " " + a.acknowledged_by : t("status_" + a.status);
  const when = li.querySelector(".when");
  when.dateTime = new Date(a.event_ms).toISOString();
  when.textContent = whenText(a.event_ms);
  li.querySelector(".visit").textContent = a.during_visit ? " · " + t("during_visit") + " " + a.during_visit : "";
  // The hand-off to the alarm receiving centre (SCAIP), where the site has one.
  const centre = li.querySelector(".centre");
  centre.hidden = !a.centre_status;
  if (a.centre_status) {
    centre.dataset.state = a.centre_status;
    centre.textContent = t("centre_" + a.centre_status);
    centre.title = a.centre_detail || "";
  }
  const details = li.querySelector(".card");
  details.open = expanded;
  li.querySelector(".plan-label").textContent = t("what_to_do");
  li.querySelector(".goals-label").textContent = t("goals");
  resident(a.resident_id).then(r => {
    name.textContent = r.name;
    li.querySelector(".plan").textContent = r.action_plan || t("no_action_plan");
    const goals = li.querySelector(".goals");
    goals.replaceChildren(...r.goals.map(g => {
      const item = document.createElement("li"); item.textContent = g.text; return item; }));
    li.querySelector(".goals-label").hidden = r.goals.length === 0;
  }).catch(() => { name.textContent = a.resident_id; });
  actions(li, a);
  return li;
}

// Acknowledge first; then resolve, with an outcome the nurse chooses (nothing is chosen
// for her) and a note when it was a false alarm or a technical fault.
function actions(li, a) {
  const ack = li.querySelector(".ack");
  ack.textContent = t("ack");
  ack.hidden = a.status !== "open";
  ack.onclick = () => act(a.id, "ack", {}).then(ok => {
    if (ok) { undoUntil.set(a.id, Date.now() + UNDO_MS); render(); } });
  const undo = li.querySelector(".undo");
  const until = undoUntil.get(a.id) || 0;
  undo.hidden = !(a.status === "acknowledged" && until > Date.now());
  undo.dataset.until = String(until);
  undo.textContent = undoLabel(until);
  undo.onclick = () => act(a.id, "unack", {}).then(ok => { if (ok) { undoUntil.delete(a.id); render(); } });
  const box = li.querySelector(".resolve-box");
  box.hidden = a.status !== "acknowledged";
  const draft = drafts.get(a.id) || {outcome: "", note: ""};
  const sel = li.querySelector(".outcome");
  li.querySelector(".outcome-label").textContent = t("outcome");
  const none = document.createElement("option");
  none.value = ""; none.textContent = t("choose_outcome"); none.disabled = true;
  sel.replaceChildren(none, ...OUTCOMES.map(o => { const opt = document.createElement("option");
    opt.value = o; opt.textContent = t("outcome_" + o); return opt; }));
  sel.value = draft.outcome;
  const noteField = li.querySelector(".note-field"), note = li.querySelector(".note");
  li.querySelector(".note-label").textContent = t("note_what_happened");
  note.value = draft.note;
  const res = li.querySelector(".resolve");
  res.textContent = t("resolve");
  const check = () => {
    drafts.set(a.id, {outcome: sel.value, note: note.value});
    noteField.hidden = !NOTE_NEEDED.has(sel.value);
    res.disabled = !sel.value || (NOTE_NEEDED.has(sel.value) && !note.value.trim());
  };
  sel.onchange = check; note.oninput = check;
  check();
  res.onclick = () => {
    if (res.disabled) return;
    const body = {outcome: sel.value};
    if (note.value.trim()) body.note = note.value.trim();
    act(a.id, "resolve", body).then(ok => { if (ok) drafts.delete(a.id); });
  };
}

function undoLabel(until) {
  return t("undo") + " (" + Math.max(0, Math.ceil((until - Date.now()) / 1000)) + " s)";
}

setInterval(() => {  // the undo offers count down, then go away
  let changed = false;
  for (const b of document.querySelectorAll("button.undo:not([hidden])")) {
    const until = Number(b.dataset.until);
    if (until <= Date.now()) changed = true; else b.textContent = undoLabel(until);
  }
  if (changed) render();
}, 500);

async function act(id, what, body) {
  try {
    const a = await api(`/api/alerts/${id}/${what}`, {method: "POST", body: JSON.stringify(body)});
    alerts.set(a.id, a); render(); clearError();
    return true;
  } catch (e) { showError(e); return false; }
}

function live(up) {
  document.getElementById("lost").hidden = up;
  const badge = document.getElementById("live");
  badge.hidden = false;
  badge.classList.toggle("down", !up);
  badge.textContent = t(up ? "live_ok" : "live_down");
}

// --- tonight's digital checks and the morning summary ---------------------------------
const unitParam = params.get("unit");
const q = unitParam ? "?unit=" + encodeURIComponent(unitParam) : "";
let checksTimer = null;
let shownNight = null;  // the summary covers the night the check list shows

async function loadChecks() {
  const data = await api("/api/supervision/tonight" + q);
  shownNight = data.residents.length ? data.residents[0].night : null;
  const list = document.getElementById("checks");
  document.getElementById("checks-empty").hidden = data.residents.length > 0;
  list.replaceChildren(...data.residents.map(r => {
    const li = document.createElement("li");
    li.className = "resident-checks"; li.dataset.resident = r.resident_id;
    const name = document.createElement("strong"); name.className = "name";
    name.textContent = t("resident");
    resident(r.resident_id).then(x => { name.textContent = x.name; }).catch(() => { name.textContent = r.resident_id; });
    const where = document.createElement("span"); where.className = "occupancy";
    if (r.occupancy && r.occupancy.state !== "home") {
      where.textContent = " · " + t("occupancy_" + r.occupancy.state);
    }
    const ol = document.createElement("ol");
    ol.replaceChildren(...r.checks.map(c => {
      const item = document.createElement("li");
      item.className = "check"; item.dataset.due = c.due; item.dataset.status = c.status;
      item.dataset.outcome = c.outcome || ""; item.dataset.late = String(c.late);
      const words = c.outcome ? t("outcome_" + c.outcome) : t("check_" + c.status);
      item.textContent = hhmm(Date.parse(c.due)) + " " + words +
        (c.status === "rechecking" ? " – " + t("check_rechecking") : "");
      if (c.late) { const l = document.createElement("span"); l.className = "late";
        l.textContent = " (" + t("late") + ")"; item.append(l); }
      return item;
    }));
    li.append(name, where, ol);
    return li;
  }));
  document.body.dataset.checksLoaded = String(Date.now());
  if (document.getElementById("summary").open) loadSummary();
}

async function loadSummary() {
  const nightQ = shownNight ? (q ? "&" : "?") + "night=" + shownNight : "";
  const s = await api("/api/supervision/summary" + q + nightQ);
  const cols = [["digital_checks", "sum_checks"], ["ok", "sum_ok"], ["attention", "sum_attention"],
    ["unknown", "sum_unknown"], ["away", "sum_away"], ["late", "sum_late"],
    ["physical_visits_made", "sum_visits_made"], ["physical_visits_avoided", "sum_visits_avoided"]];
  const row = (label, r) => { const tr = document.createElement("tr");
    const cells = [label, ...cols.map(([k]) => String(r[k] ?? 0)),
      String(Object.values(r.alerts).reduce((a, b) => a + b, 0))];
    tr.replaceChildren(...cells.map(c => { const td = document.createElement("td");
      td.textContent = c; return td; })); return tr; };
  const head = document.createElement("tr");
  head.replaceChildren(...[t("resident") + " (" + t("night_of") + " " + dateText(s.night) + ")",
    ...cols.map(([, l]) => t(l)), t("sum_alerts")].map(c => {
    const th = document.createElement("th"); th.textContent = c; return th; }));
  const table = document.getElementById("summary-table");
  table.tHead.replaceChildren(head);
  table.tBodies[0].replaceChildren(...s.residents.map(r => {
    const tr = row(t("resident"), r);
    resident(r.resident_id).then(x => { tr.firstChild.textContent = x.name; }).catch(() => { tr.firstChild.textContent = r.resident_id; });
    return tr;
  }), row(t("total"), s.total));
  // Unknown is never OK: who could not be told home or away when the night began.
  const unknown = (s.total.occupancy_at_start || {}).unknown || 0;
  const warn = document.getElementById("summary-unknown");
  warn.hidden = unknown === 0;
  warn.textContent = t("summary_occupancy_unknown").replace("{n}", String(unknown));
}

function checksSoon() {  // several entries arrive together: one reload
  clearTimeout(checksTimer);
  checksTimer = setTimeout(() => loadChecks().catch(() => live(false)), 200);
}

async function startChecks() {
  await loadChecks();
  document.getElementById("summary").addEventListener("toggle", (ev) => {
    if (ev.target.open) loadSummary().catch(showError); });
  openStream("/api/supervision/stream", {check: checksSoon}, {onError: () => live(false)});
  setInterval(checksSoon, 60_000);  // pending checks become due as time passes
}

// --- notifications on a locked phone (Web Push) ------------------------------------------

function keyBytes(b64) {
  const s = atob(b64.replace(/-/g, "+").replace(/_/g, "/") + "==".slice((b64.length + 2) % 4 || 2));
  return Uint8Array.from(s, c => c.charCodeAt(0));
}

async function setupNotify() {
  const b = document.getElementById("notify");
  if (!("serviceWorker" in navigator) || !("PushManager" in window) || !("Notification" in window)) return;
  const reg = await navigator.serviceWorker.register("/sw.js");
  b.hidden = false;
  const refresh = async () => {
    const sub = await reg.pushManager.getSubscription();
    b.textContent = t(sub ? "notify_off" : "notify_on");
    b.dataset.on = String(Boolean(sub));
  };
  b.onclick = async () => {
    try {
      const sub = await reg.pushManager.getSubscription();
      if (sub) {
        await call("/api/push/subscriptions", {method: "DELETE", body: JSON.stringify({endpoint: sub.endpoint})});
        await sub.unsubscribe();
      } else {
        if (await Notification.requestPermission() !== "granted") {
          document.getElementById("error").textContent = t("notify_denied");
          document.getElementById("error").hidden = false;
          return;
        }
        const {public_key} = await api("/api/push/key");
        const s = await reg.pushManager.subscribe({userVisibleOnly: true, applicationServerKey: keyBytes(public_key)});
        await call("/api/push/subscriptions", {method: "POST", body: JSON.stringify(s.toJSON())});
      }
      clearError();
    } catch (e) {
      document.getElementById("error").textContent = t("notify_failed");
      document.getElementById("error").hidden = false;
    }
    refresh();
  };
  refresh();
}

// --- start ---------------------------------------------------------------------------------

async function start() {
  if (!await loadMessages()) return;  // the login form only
  if (site.unit_name) document.getElementById("title").textContent = t("title") + " – " + site.unit_name;
  document.getElementById("sound").onclick = () => { audio = audio || new AudioContext(); audio.resume(); };
  const first = await api("/api/alerts?status=unresolved");
  for (const a of first.alerts) alerts.set(a.id, a);
  render();
  if (focusId && params.get("ack") === "1") {  // "Kvittera" on the notification
    const a = alerts.get(Number(focusId));
    if (a && a.status === "open") await act(a.id, "ack", {});
  }
  if (focusId) history.replaceState(null, "", location.pathname + (lang === "en" ? "?lang=en" : ""));
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
  startChecks().catch(showError);
  setupNotify().catch(() => {});
}
start().catch(showError);
