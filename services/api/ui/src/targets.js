// Department targets: the periods the page shows and sets (a month `YYYY-MM` or a year
// `YYYY`, in the hospital's local calendar), the measures, and the rule a typed target keeps.
import { call, session } from "./api.js";

export const MEASURES = ["cases", "cost_per_case", "total_cost"];

/** This month, next month, this year, next year, from the hospital's local day. */
export function targetPeriods(today) {
  const year = Number(today.slice(0, 4));
  const month = Number(today.slice(5, 7));
  const next = month === 12 ? `${year + 1}-01` : `${year}-${String(month + 1).padStart(2, "0")}`;
  return [
    { key: "thisMonth", period: today.slice(0, 7) },
    { key: "nextMonth", period: next },
    { key: "thisYear", period: String(year) },
    { key: "nextYear", period: String(year + 1) },
  ];
}

/** Whether the caller may set targets: the insurance office and admins. */
export function maySetTargets() {
  const role = session.identity && session.identity.role;
  return !session.available || !role || role === "insurance_office" || role === "admin";
}

const MONEY = /^\d{1,16}(\.\d{1,2})?$/;
const CASES = /^\d{1,8}$/;

/** "" when a typed figure is fine (or empty), else the i18n key of what is wrong. */
export function targetProblem(measure, text) {
  const value = String(text || "").trim();
  if (!value) return "";
  if (measure === "cases") {
    if (!CASES.test(value)) return "targets.badCases";
    return Number(value) > 0 && Number(value) <= 10_000_000 ? "" : "targets.badCases";
  }
  if (!MONEY.test(value)) return "targets.badMoney";
  return /[1-9]/.test(value) ? "" : "targets.badMoney";
}

/** The PUT body of the typed figures: cases a number, money decimal strings, empty ones null. */
export function targetBody(form) {
  const text = (measure) => String(form[measure] || "").trim();
  return {
    cases: text("cases") ? Number(text("cases")) : null,
    cost_per_case: text("cost_per_case") || null,
    total_cost: text("total_cost") || null,
  };
}

const path = (hospital, department, period) =>
  `/v1/hospitals/${encodeURIComponent(hospital)}/targets/${encodeURIComponent(department)}/${encodeURIComponent(period)}`;

export const putTarget = (hospital, department, period, body) => call("PUT", path(hospital, department, period), { body });
export const deleteTarget = (hospital, department, period) => call("DELETE", path(hospital, department, period));
