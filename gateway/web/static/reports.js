// Report page: the three IBIC reports (HTML in the frame; CSV and JSON downloads). The
// resident is picked from the residents in the caller's scope, the unit from theirs.
"use strict";
const form = document.getElementById("form");
const frame = document.getElementById("report");

function reportPath(format) {
  const f = form.elements, kind = f.kind.value;
  const q = new URLSearchParams({format, lang});
  if (kind === "unit") {
    q.set("first", f.first.value); q.set("last", f.last.value);
    if (f.unit.value) q.set("unit", f.unit.value);
    return "/api/reports/unit?" + q;
  }
  if (kind === "digital-trial") {
    for (const k of ["baseline_first", "baseline_last", "trial_first", "trial_last"]) q.set(k, f[k].value);
  }
  return "/api/reports/" + kind + "/" + encodeURIComponent(f.resident.value) + "?" + q;
}

function fields() {
  const kind = form.elements.kind.value;
  for (const el of form.querySelectorAll(".for-resident")) el.hidden = kind === "unit";
  for (const el of form.querySelectorAll(".for-unit")) el.hidden = kind !== "unit";
  for (const el of form.querySelectorAll(".for-trial")) el.hidden = kind !== "digital-trial";
  form.elements.resident.required = kind !== "unit";
  clearReport();
}

// A new request clears the old report first: a stale report must never sit under a new
// error, or look like the answer to the new question.
function clearReport() {
  frame.hidden = true;
  frame.srcdoc = "";
  clearError();
}

async function pickers() {
  const residents = await (await call("/api/residents")).json();
  const sel = form.elements.resident;
  sel.append(...residents.map(r => { const o = document.createElement("option");
    o.value = r.id; o.textContent = r.name + " (" + r.id + ")"; return o; }));
  document.getElementById("no-residents").hidden = residents.length > 0;
  const units = form.elements.unit;
  units.append(...Object.entries(site.units).map(([id, name]) => { const o = document.createElement("option");
    o.value = id; o.textContent = name; return o; }));
  const today = new Date().toISOString().slice(0, 10);
  const ago = (days) => new Date(Date.now() - days * 86400000).toISOString().slice(0, 10);
  for (const [k, v] of [["first", ago(30)], ["last", today], ["baseline_first", ago(60)],
    ["baseline_last", ago(31)], ["trial_first", ago(30)], ["trial_last", today]]) {
    if (!form.elements[k].value) form.elements[k].value = v;
  }
  for (const [k, v] of params) if (form.elements[k]) form.elements[k].value = v;
  fields();
}

form.elements.kind.addEventListener("change", fields);
for (const el of form.elements) if (el.name && el.name !== "kind") el.addEventListener("change", clearReport);
form.addEventListener("submit", async (ev) => {
  ev.preventDefault();
  clearReport();
  try {
    showReport(frame, await (await call(reportPath("html"))).text());
    frame.hidden = false;
  } catch (e) { showError(e); }
});
document.getElementById("csv").addEventListener("click", () => download(reportPath("csv"), "rapport.csv").catch(showError));
document.getElementById("json").addEventListener("click", () => download(reportPath("json"), "rapport.json").catch(showError));
document.getElementById("print").addEventListener("click", () => frame.contentWindow.print());
loadMessages().then(ok => ok && pickers()).catch(showError);
