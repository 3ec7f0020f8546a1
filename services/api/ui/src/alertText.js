// How departments and alerts read in a sentence. A target alert is about a department's
// pace against the target the insurance office set for a month or a year: it has no case.
import { percent } from "./format.js";

/** "Cardiology (CARDIO)" in the page's language when the department has a name, else the code. */
export function departmentName(code, names, locale) {
  const named = names ? names[code] : null;
  const name = named ? (locale === "zh" ? named.name_zh || named.name_en : named.name_en || named.name_zh) : null;
  return name ? `${name} (${code})` : code;
}

/** The department in a sentence: its name, else "Department CODE". */
function departmentInSentence(code, names, locale, t) {
  const named = departmentName(code, names, locale);
  return named === code ? t("target.department", { code }) : named;
}

/** What an alert without a case is about: a target alert's pace, else its department. */
export function caselessText(alert, { t, locale, names }) {
  const department = departmentInSentence(alert.department || "—", names, locale, t);
  if (alert.kind !== "target") return department;
  const key = alert.target_measure === "cost_per_case" ? "target.costPerCase" : "target.totalCost";
  return t(key, { department, period: alert.target_period || "—", ratio: percent(alert.ratio) });
}
