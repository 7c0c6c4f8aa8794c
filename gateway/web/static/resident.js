// Resident page: action plan and goals for everyone in scope; the follow-up report with
// progress charts and the follow-up form for assessors, managers and administrators.
"use strict";
const rid = params.get("id") || "";
const FOLLOW_UP_OPENS_DAYS = 28;  // the follow-up form appears from 28 days before the date

async function goalsAndReport() {
  const card = await (await call("/api/residents/" + encodeURIComponent(rid))).json();
  document.getElementById("name").textContent = card.name + " (" + card.id + ")";
  document.getElementById("unit").textContent = t("unit") + ": " + unitName(card.unit);
  document.getElementById("plan").textContent = card.action_plan || t("no_action_plan");
  const goals = await (await call("/api/residents/" + encodeURIComponent(rid) + "/goals")).json();
  let report = null;
  try {
    report = await (await call("/api/reports/followup/" + encodeURIComponent(rid) + "?format=html&lang=" + lang)).text();
  } catch (e) { if (e.status !== 403) throw e; }
  const list = document.getElementById("goals");
  list.replaceChildren(...goals.map(g => goalItem(g, report !== null)));
  document.getElementById("no-goals").hidden = goals.length > 0;
  if (report !== null) {
    document.getElementById("report-section").hidden = false;
    showReport(document.getElementById("report"), report);
  }
}

function goalItem(g, canFollowUp) {
  const li = document.getElementById("goal-tpl").content.firstElementChild.cloneNode(true);
  li.dataset.goal = g.id;
  li.querySelector(".goal-text").textContent = g.text;
  let meta = t("area_" + g.life_area) + (g.icf ? " · ICF " + g.icf : "") + " · " + t("r_follow_up") +
    " " + dateText(g.follow_up) + " · " + t("r_status") + ": " + t("r_status_" + g.status);
  if (g.proposal) meta += " · " + t("r_proposal") + ": " +
    (g.proposal.status ? t("r_status_" + g.proposal.status) : t("r_no_proposal")) + " (" + t("r_awaiting") + ")";
  li.querySelector(".goal-meta").textContent = meta;
  const form = li.querySelector("form");
  for (const el of form.querySelectorAll("[data-i18n]")) el.textContent = t(el.dataset.i18n);
  form.comment.placeholder = t("res_comment");
  form.comment.setAttribute("aria-label", t("res_comment"));
  form.status.setAttribute("aria-label", t("res_followup"));
  // Only near the follow-up date, and nothing chosen for the assessor: a follow-up months
  // early, or one tap on a preselected "achieved", would be a record nobody meant.
  const opens = Date.parse(g.follow_up) - FOLLOW_UP_OPENS_DAYS * 86400000;
  const open = canFollowUp && g.status !== "achieved" && Date.now() >= opens;
  form.hidden = !open;
  const later = li.querySelector(".followup-later");
  later.hidden = !canFollowUp || open;
  later.textContent = t("followup_from").replace("{date}", dateText(new Date(opens).toISOString()));
  const save = form.querySelector("button[type=submit]");
  form.status.addEventListener("change", () => { save.disabled = !form.status.value; });
  form.addEventListener("submit", async (ev) => {
    ev.preventDefault();
    if (!form.status.value) return;
    try {
      await call("/api/residents/" + encodeURIComponent(rid) + "/goals/" + encodeURIComponent(g.id) + "/follow-up",
        {method: "POST", body: JSON.stringify({status: form.status.value, comment: form.comment.value || null})});
      form.querySelector(".saved").hidden = false;
      await goalsAndReport();
    } catch (e) { showError(e); }
  });
  return li;
}

// Fall-risk trend: the daily probability with the level thresholds, and walking speed.
async function riskTrend() {
  const r = await (await call("/api/residents/" + encodeURIComponent(rid) + "/risk?days=90")).json();
  const summary = document.getElementById("risk-summary");
  const factors = document.getElementById("risk-factors");
  const charts = document.getElementById("risk-charts");
  // The method in force (docs/fall-risk.md#which-method) and why it is the one.
  const m = r.method;
  document.getElementById("risk-method").textContent = t("risk_method") + ": " +
    (lang === "en" ? m.en : m.sv) + " (" + (lang === "en" ? m.reason_en : m.reason_sv) + ")";
  if (m.id === "decline") summary.textContent = t("risk_by_decline");
  else if (!r.latest) summary.textContent = t("risk_no_score");
  else summary.textContent = t("risk_level") + ": " + t("risk_" + r.latest.level) + " (" +
    Math.round(r.latest.probability * 100) + " %, " + dateText(r.latest.day) + ")";
  // The walking-speed decline test needs no model (docs/fall-risk.md).
  const dec = r.series.filter(s => s.decline).map(s => s.decline);
  const d = dec.length ? dec[dec.length - 1] : null;
  document.getElementById("risk-decline").textContent = !d ? t("risk_decline_unknown") :
    d.flagged ? t("risk_decline_flagged").replace("{drop}", num(d.drop))
      .replace("{recent}", Math.round(d.recent)).replace("{usual}", Math.round(d.usual))
      .replace("{day}", dateText(d.day)) : t("risk_decline_none").replace("{day}", dateText(d.day));
  // The uncertainty: the statistic against the threshold an alert needs.
  document.getElementById("risk-decline-z").textContent = !d ? "" :
    t("risk_decline_z").replace("{z}", num(d.z)).replace("{th}", num(m.decline_threshold))
      .replace("{sd}", num(d.spread));
  if (r.model) document.getElementById("risk-model").textContent = t("risk_model") + " " +
    r.model.version + (r.model.simulated ? " – " + t("risk_simulated") : "");
  const byModel = m.id !== "decline" && r.latest;
  const latest = byModel ? r.latest.factors : (d && d.flagged ? [{
    sv: t("risk_decline_factor").replace("{drop}", num(d.drop)),
    en: t("risk_decline_factor").replace("{drop}", num(d.drop))}] : []);
  document.getElementById("risk-factors-box").hidden = !byModel && !latest.length;
  if (byModel && !latest.length) latest.push({sv: t("risk_no_factors"), en: t("risk_no_factors")});
  factors.replaceChildren(...latest.map(f => {
    const li = document.createElement("li");
    li.textContent = lang === "en" ? f.en : f.sv;
    return li;
  }));
  const scored = m.id === "decline" ? [] : r.series.filter(s => s.probability !== null);
  const speeds = r.series.filter(s => s.walking_speed !== null);
  const th = r.model ? r.model.thresholds : null;
  // No empty boxes: a chart only where there is something to draw, else one sentence.
  const figs = [];
  if (scored.length) figs.push(lineChart(t("risk_probability"), scored.map(s => [s.day, s.probability * 100]), th ? th.map(x => x * 100) : [], "%"));
  if (speeds.length) figs.push(lineChart(t("risk_speed"), speeds.map(s => [s.day, s.walking_speed]), [], "cm/s"));
  const zs = r.series.filter(s => s.decline).map(s => [s.day, s.decline.z]);
  if (zs.length) figs.push(lineChart(t("risk_decline_chart"), zs, [m.decline_threshold], ""));
  charts.replaceChildren(...figs);
  document.getElementById("risk-empty").hidden = figs.length > 0;
}

function lineChart(title, points, guides, unit) {
  const ns = "http://www.w3.org/2000/svg";
  const fig = document.createElement("figure");
  const cap = document.createElement("figcaption");
  cap.textContent = title;
  fig.append(cap);
  const svg = document.createElementNS(ns, "svg");
  const W = 560, H = 160, L = 44, B = 22;
  svg.setAttribute("viewBox", "0 0 " + W + " " + H);
  svg.setAttribute("role", "img");
  svg.setAttribute("aria-label", title);
  fig.append(svg);
  if (!points.length) return fig;
  const ys = points.map(p => p[1]).concat(guides);
  let lo = Math.min(...ys), hi = Math.max(...ys);
  if (hi - lo < 1) { hi += 0.5; lo -= 0.5; }
  const x = i => L + (W - L - 8) * (points.length === 1 ? 0.5 : i / (points.length - 1));
  const y = v => 8 + (H - B - 8) * (1 - (v - lo) / (hi - lo));
  const el = (name, attrs, text) => {
    const e = document.createElementNS(ns, name);
    for (const [k, v] of Object.entries(attrs)) e.setAttribute(k, v);
    if (text !== undefined) e.textContent = text;
    svg.append(e);
  };
  for (const g of guides) el("line", {x1: L, x2: W - 8, y1: y(g), y2: y(g), class: "guide"});
  el("polyline", {points: points.map((p, i) => x(i) + "," + y(p[1])).join(" "), class: "series"});
  el("text", {x: 2, y: y(hi) + 4, class: "axis"}, hi.toFixed(0) + " " + unit);
  el("text", {x: 2, y: y(lo), class: "axis"}, lo.toFixed(0));
  el("text", {x: L, y: H - 4, class: "axis"}, dateText(points[0][0]));
  el("text", {x: W - 90, y: H - 4, class: "axis"}, dateText(points[points.length - 1][0]));
  return fig;
}

document.getElementById("print").addEventListener("click", () => document.getElementById("report").contentWindow.print());
loadMessages().then(ok => ok && Promise.all([goalsAndReport(), riskTrend()])).catch(showError);
