// The period the discharged-case figures cover, chosen on the overview and the department
// page and kept in the address (`?period=`), so a link or a reload keeps it. Local days of
// the hospital; the indicator endpoints take any `from`/`to` of up to 366 days.
import { addDays, localDay, monthStart } from "./format.js";

export const PERIODS = ["last30", "thisMonth", "lastMonth", "thisYear"];
// the last 30 days: never thin, not even on the first of a month
export const DEFAULT_PERIOD = "last30";

/** The period named in the address, else the default. */
export function periodName(query) {
  return PERIODS.includes(query) ? query : DEFAULT_PERIOD;
}

/** `{ from, to }` (YYYY-MM-DD, both included) of a named period ending on `today`. */
export function periodRange(name, today = localDay()) {
  const thisMonth = monthStart(today);
  switch (name) {
    case "thisMonth":
      return { from: thisMonth, to: today };
    case "lastMonth":
      return { from: monthStart(addDays(thisMonth, -1)), to: addDays(thisMonth, -1) };
    case "thisYear":
      return { from: `${today.slice(0, 4)}-01-01`, to: today };
    default:
      return { from: addDays(today, -29), to: today };
  }
}

/** Days from `from` to `to`, both included. */
export function daysIn(from, to) {
  const moment = (day) => Date.UTC(Number(day.slice(0, 4)), Number(day.slice(5, 7)) - 1, Number(day.slice(8, 10)));
  return Math.round((moment(to) - moment(from)) / 86_400_000) + 1;
}
