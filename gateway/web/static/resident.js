// Resident page: action plan and goals for everyone in scope; the follow-up report with
// progress charts and the follow-up form for assessors, managers and administrators.
"use strict";
const rid = params.get("id") || "";

async function goalsAndReport() {
  const card = await (await call("/api/residents/" + encodeURIComponent(rid))).json();
  document.getElementById("name").textContent = card.name + " (" + card.id + ")";
  document.getElementById("plan").textContent = card.action_plan || "–";
  const goals = await (await call("/api/residents/" + encodeURIComponent(rid) + "/goals")).json();
  let report = null;
  try {
    report = await (await call("/api/reports/followup/" + encodeURIComponent(rid) + "?format=html&lang=" + lang)).text();
  } catch (e) { if (e.status !== 403) throw e; }
  const list = document.getElementById("goals");
  list.replaceChildren(...goals.map(g => goalItem(g, report !== null)));
  if (report !== null) {
    document.getElementById("report-section").hidden = false;
    showReport(document.getElementById("report"), report);
  }
}

function goalItem(g, canFollowUp) {
  const li = document.getElementById("goal-tpl").content.firstElementChild.cloneNode(true);
  li.dataset.goal = g.id;
  li.querySelector(".goal-text").textContent = g.text;
  let meta = g.life_area + (g.icf ? " · " + g.icf : "") + " · " + t("r_follow_up") + " " + g.follow_up +
    " · " + t("r_status") + ": " + t("r_status_" + g.status);
  if (g.proposal) meta += " · " + t("r_proposal") + ": " +
    (g.proposal.status ? t("r_status_" + g.proposal.status) : t("r_no_proposal")) + " (" + t("r_awaiting") + ")";
  li.querySelector(".goal-meta").textContent = meta;
  const form = li.querySelector("form");
  for (const el of form.querySelectorAll("[data-i18n]")) el.textContent = t(el.dataset.i18n);
  form.comment.placeholder = t("res_comment");
  form.hidden = !canFollowUp;
  if (g.proposal && g.proposal.status) form.status.value = g.proposal.status;
  form.addEventListener("submit", async (ev) => {
    ev.preventDefault();
    try {
      await call("/api/residents/" + encodeURIComponent(rid) + "/goals/" + encodeURIComponent(g.id) + "/follow-up",
        {method: "POST", body: JSON.stringify({status: form.status.value, comment: form.comment.value || null})});
      form.querySelector(".saved").hidden = false;
      await goalsAndReport();
    } catch (e) { showError(e); }
  });
  return li;
}

document.getElementById("print").addEventListener("click", () => document.getElementById("report").contentWindow.print());
loadMessages().then(goalsAndReport).catch(showError);
