// The live alert feed (server-sent events, resumed by the browser with Last-Event-ID), a
// short tone synthesized with WebAudio, and browser notifications when the user allows them.
import { ref } from "vue";

const NOTIFY_KEY = "drgwatch.notifications";

function remembered() {
  try {
    return window.localStorage.getItem(NOTIFY_KEY) === "on";
  } catch {
    return false;
  }
}

function remember(on) {
  try {
    window.localStorage.setItem(NOTIFY_KEY, on ? "on" : "off");
  } catch {
    // storage refused (a private window): the choice lasts as long as the page
  }
}

export const soundOn = ref(false);
// "granted", "denied" (the user or the browser's settings blocked them), "default" (not asked
// yet) or "unsupported"
export const notifyPermission = ref(typeof Notification === "undefined" ? "unsupported" : Notification.permission);
// on when the user turned them on in this browser and the browser still allows them
export const notifyOn = ref(notifyPermission.value === "granted" && remembered());
let audio = null;

/** Turn the tone on; must run from a user's click (browsers start audio only then). */
export function enableSound() {
  const Context = window.AudioContext || window.webkitAudioContext;
  if (!Context) return false;
  audio = audio || new Context();
  audio.resume();
  soundOn.value = true;
  return true;
}

/** The sound toggle: on (from the user's click) or off. */
export function toggleSound() {
  if (soundOn.value) {
    soundOn.value = false;
    return false;
  }
  return enableSound();
}

/** Two short beeps, higher for red. */
export function tone(level) {
  if (!soundOn.value || !audio) return;
  const pitch = level === "red" ? 880 : level === "yellow" ? 660 : 520;
  for (const start of [0, 0.22]) {
    const oscillator = audio.createOscillator();
    const gain = audio.createGain();
    oscillator.type = "sine";
    oscillator.frequency.value = pitch;
    const at = audio.currentTime + start;
    gain.gain.setValueAtTime(0.0001, at);
    gain.gain.exponentialRampToValueAtTime(0.25, at + 0.02);
    gain.gain.exponentialRampToValueAtTime(0.0001, at + 0.16);
    oscillator.connect(gain).connect(audio.destination);
    oscillator.start(at);
    oscillator.stop(at + 0.18);
  }
}

export async function enableNotifications() {
  if (typeof Notification === "undefined") return false;
  const permission = await Notification.requestPermission();
  notifyPermission.value = permission;
  notifyOn.value = permission === "granted";
  if (notifyOn.value) remember(true);
  return notifyOn.value;
}

/** The notification toggle: asks the browser's permission when turned on. */
export async function toggleNotifications() {
  if (notifyOn.value) {
    notifyOn.value = false;
    remember(false);
    return false;
  }
  return enableNotifications();
}

export function notify(title, body) {
  if (!notifyOn.value || typeof Notification === "undefined") return;
  try {
    new Notification(title, { body, tag: "drgwatch-alert" });
  } catch {
    // some browsers allow notifications only from a service worker; the page still shows the alert
  }
}

/** Open the feed; `onAlert(alert)` for each alert, `onState(connected)` as the link comes and goes. */
export function openFeed(query, onAlert, onState) {
  const params = new URLSearchParams(query);
  const source = new EventSource(`/v1/alerts/stream?${params}`, { withCredentials: true });
  source.addEventListener("open", () => onState(true));
  source.addEventListener("error", () => onState(false));
  source.addEventListener("alert", (event) => {
    try {
      onAlert(JSON.parse(event.data));
    } catch (error) {
      console.warn("alert feed", error);
    }
  });
  return () => source.close();
}
