// Report page: the three IBIC reports (HTML in the frame; CSV and JSON downloads).
"use strict";
const form = document.getElementById("form");

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
}

form.elements.kind.addEventListener("change", fields);
form.addEventListener("submit", async (ev) => {
  ev.preventDefault();
  try {
    document.getElementById("error").hidden = true;
    showReport(document.getElementById("report"), await (await call(reportPath("html"))).text());
  } catch (e) { showError(e); }
});
document.getElementById("csv").addEventListener("click", () => download(reportPath("csv"), "report.csv").catch(showError));
document.getElementById("json").addEventListener("click", () => download(reportPath("json"), "report.json").catch(showError));
document.getElementById("print").addEventListener("click", () => document.getElementById("report").contentWindow.print());
for (const [k, v] of params) if (form.elements[k]) form.elements[k].value = v;
loadMessages().then(fields).catch(showError);
