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

/** A rule alert's rule in the page's language (the name it had when it found this), else its id. */
export function ruleName(alert, locale) {
  const name = alert.rule_name || {};
  return (locale === "zh" ? name.zh || name.en : name.en || name.zh) || alert.rule_id || "—";
}

/** What a rule found, in the page's language. */
export function ruleSentence(alert, locale) {
  return (locale === "zh" ? alert.text_zh || alert.text_en : alert.text_en || alert.text_zh) || "";
}

/** Where an alert leads: its case, else (a department's alert) its department, else nowhere. */
export function alertTarget(alert, hospital, period) {
  const at = alert.hospital_id || hospital;
  if (alert.case_id) return { name: "case", params: { hospital: at, caseId: alert.case_id } };
  if (alert.department) return { name: "department", params: { hospital: at, code: alert.department }, query: { period } };
  return null;
}
