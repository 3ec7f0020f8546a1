// Numbers and times for people. Money arrives as decimal strings and is formatted as
// strings (never through floating point); times in the hospital's time zone.
import { session } from "./api.js";

export const DASH = "—";

/** Round a decimal string half away from zero to `places` digits; returns [sign, int, frac]. */
function roundDecimal(text, places) {
  const match = /^([+-]?)(\d*)(?:\.(\d*))?$/.exec(String(text).trim());
  if (!match) return null;
  const sign = match[1] === "-" ? "-" : "";
  let digits = (match[2] || "0") + (match[3] || "").padEnd(places + 1, "0");
  const intLength = (match[2] || "0").length;
  const keep = intLength + places;
  const roundUp = Number(digits[keep]) >= 5;
  digits = digits.slice(0, keep);
  if (roundUp) {
    const chars = digits.split("");
    let i = chars.length - 1;
    while (i >= 0) {
      if (chars[i] === "9") {
        chars[i] = "0";
        i -= 1;
      } else {
        chars[i] = String(Number(chars[i]) + 1);
        break;
      }
    }
    digits = (i < 0 ? "1" : "") + chars.join("");
  }
  const integer = digits.slice(0, digits.length - places).replace(/^0+(?=\d)/, "") || "0";
  const fraction = places ? digits.slice(digits.length - places) : "";
  const zero = /^0*$/.test(integer + fraction);
  return [zero ? "" : sign, integer, fraction];
}

function group(integer) {
  return integer.replace(/\B(?=(\d{3})+(?!\d))/g, ",");
}

/** "1234567.5" -> "1,234,567.50"; null/undefined -> "—". */
export function money(value) {
  if (value === null || value === undefined || value === "") return DASH;
  const parts = roundDecimal(value, 2);
  if (!parts) return DASH;
  const [sign, integer, fraction] = parts;
  return `${sign}${group(integer)}.${fraction}`;
}

/** A unit price as given, to the cent or to as many places as it has beyond:
 * "11800.00" -> "11,800.00", "0.042" -> "0.042", "6.8500" -> "6.85". */
export function unitPrice(value) {
  if (value === null || value === undefined || value === "") return DASH;
  const match = /^([+-]?)(\d*)(?:\.(\d*))?$/.exec(String(value).trim());
  if (!match) return DASH;
  const fraction = (match[3] || "").replace(/0+$/, "").padEnd(2, "0");
  const integer = (match[2] || "0").replace(/^0+(?=\d)/, "");
  return `${match[1] === "-" ? "-" : ""}${group(integer)}.${fraction}`;
}

/** A ratio string as a percentage: "0.9523" -> "95.2%". */
export function percent(value, places = 1) {
  if (value === null || value === undefined || value === "") return DASH;
  const match = /^([+-]?)(\d*)(?:\.(\d*))?$/.exec(String(value).trim());
  if (!match) return DASH;
  const fraction = (match[3] || "").padEnd(2, "0");
  const shifted = `${match[1]}${match[2] || "0"}${fraction.slice(0, 2)}.${fraction.slice(2) || "0"}`;
  const parts = roundDecimal(shifted, places);
  if (!parts) return DASH;
  const [sign, integer, frac] = parts;
  return `${sign}${group(integer)}${places ? `.${frac}` : ""}%`;
}

/** A decimal string with up to `places` digits (days, indices). */
export function decimal(value, places = 2) {
  if (value === null || value === undefined || value === "") return DASH;
  const parts = roundDecimal(value, places);
  if (!parts) return DASH;
  const [sign, integer, fraction] = parts;
  return `${sign}${group(integer)}${places ? `.${fraction}` : ""}`;
}

export function count(value) {
  return value === null || value === undefined ? DASH : String(value);
}

function formatter(locale, options) {
  return new Intl.DateTimeFormat(locale === "zh" ? "zh-CN" : "en-GB", {
    timeZone: session.timezone || "Asia/Shanghai",
    ...options,
  });
}

/** An ISO-8601 moment in the hospital's time zone. */
export function dateTime(value, locale) {
  if (!value) return DASH;
  const moment = new Date(value);
  if (Number.isNaN(moment.getTime())) return DASH;
  return formatter(locale, {
    year: "numeric",
    month: "2-digit",
    day: "2-digit",
    hour: "2-digit",
    minute: "2-digit",
    hour12: false,
  }).format(moment);
}

/** The hospital's local day of a moment, as YYYY-MM-DD. */
export function localDay(moment = new Date()) {
  const parts = new Intl.DateTimeFormat("en-CA", {
    timeZone: session.timezone || "Asia/Shanghai",
    year: "numeric",
    month: "2-digit",
    day: "2-digit",
  }).formatToParts(moment);
  const pick = (type) => parts.find((part) => part.type === type).value;
  return `${pick("year")}-${pick("month")}-${pick("day")}`;
}

/** YYYY-MM-DD shifted by `days` (calendar arithmetic on the date only). */
export function addDays(day, days) {
  const [year, month, date] = day.split("-").map(Number);
  const moment = new Date(Date.UTC(year, month - 1, date + days));
  return moment.toISOString().slice(0, 10);
}

/** The first day of the hospital's current month. */
export function monthStart(day) {
  return `${day.slice(0, 7)}-01`;
}

// Exact decimal arithmetic on strings (BigInt scaled by 10^SCALE), for the few figures the
// page derives itself: a share of a total, the sum of two totals the API gave.
const SCALE = 6;
const UNIT = 10n ** BigInt(SCALE);

function scaled(text) {
  const match = /^([+-]?)(\d*)(?:\.(\d*))?$/.exec(String(text).trim());
  if (!match) return null;
  const fraction = (match[3] || "").padEnd(SCALE, "0").slice(0, SCALE);
  const value = BigInt(match[2] || "0") * UNIT + BigInt(fraction || "0");
  return match[1] === "-" ? -value : value;
}

function unscaled(value) {
  const negative = value < 0n;
  const magnitude = negative ? -value : value;
  const integer = magnitude / UNIT;
  const fraction = String(magnitude % UNIT).padStart(SCALE, "0");
  return `${negative ? "-" : ""}${integer}.${fraction}`;
}

/** a + b of decimal strings, exactly; null if either is missing. */
export function addDecimal(a, b) {
  if (a === null || a === undefined || b === null || b === undefined) return null;
  const left = scaled(a);
  const right = scaled(b);
  return left === null || right === null ? null : unscaled(left + right);
}

/** a / b of decimal strings to six places (truncated); null if missing or b is zero. */
export function divideDecimal(a, b) {
  if (a === null || a === undefined || b === null || b === undefined) return null;
  const top = scaled(a);
  const bottom = scaled(b);
  if (top === null || bottom === null || bottom === 0n) return null;
  return unscaled((top * UNIT) / bottom);
}

/** The first moment of a local day in the hospital's time zone, ISO-8601 with its offset
 * (the offset of the day's noon: a day that changes clocks is off by the change at most). */
export function dayStart(day) {
  const [year, month, date] = day.split("-").map(Number);
  const noon = new Date(Date.UTC(year, month - 1, date, 12));
  const zone = new Intl.DateTimeFormat("en-US", { timeZone: session.timezone || "Asia/Shanghai", timeZoneName: "longOffset" })
    .formatToParts(noon)
    .find((part) => part.type === "timeZoneName").value; // "GMT+08:00", or "GMT" at UTC
  return `${day}T00:00:00${zone === "GMT" ? "+00:00" : zone.slice(3)}`;
}
