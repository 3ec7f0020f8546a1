// Which hospitals the caller may look at: GET /v1/hospitals, else the signed-in identity's
// hospitals, else the hospitals named by the alerts the caller sees.
import { ref } from "vue";
import { get, getOptional, session } from "./api.js";

export const hospitals = ref([]);
let loading = null;

async function discover() {
  const listed = await getOptional("/v1/hospitals").catch(() => null);
  if (listed && Array.isArray(listed.items)) return listed.items.map((item) => item.hospital_id);
  const own = session.identity && Array.isArray(session.identity.hospitals) ? session.identity.hospitals : [];
  if (own.length && !own.includes("*")) return [...own].sort();
  const alerts = await get("/v1/alerts", { limit: 500 }).catch(() => ({ items: [] }));
  return [...new Set(alerts.items.map((alert) => alert.hospital_id))].sort();
}

/** The hospitals, loaded once per page (again after `force`). */
export function loadHospitals(force = false) {
  if (!loading || force) {
    loading = discover().then((ids) => {
      hospitals.value = ids;
      return ids;
    });
  }
  return loading;
}
