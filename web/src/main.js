import { AvaturnHead } from "@avaturn-live/web-sdk";
import { PUBLIC_AVATURN_API_HOST, trustedApiHost } from "./apihost.js";
import {
  FriendlyError,
  createSession,
  describeSdkError,
  endSession,
  listProfiles,
  renewDelayMs,
  renewLease,
  reportEnd,
  sendEndBeacon,
} from "./broker.js";
import { forget, leftover, remember, sdkErrorCode } from "./lifecycle.js";

const DEFAULTS = { brokerUrl: "http://127.0.0.1:3000", avaturnApiHost: PUBLIC_AVATURN_API_HOST };
const SDK_FETCH_POLL_MS = 50;
const SDK_FETCH_TIMEOUT_MS = 20_000;
const LEASE_RETRY_MS = 5_000; // a keepalive that failed (broker unreachable) is tried again after this

const STATES = {
  idle: "No session",
  starting: "Asking the broker for a session…",
  connecting: "Connecting to the avatar…",
  live: "Live",
  ending: "Ending the session…",
  ended: "Session ended",
  failed: "Not connected",  // End stays available while the broker still holds a session
};

const CAPTIONS = {
  idle: "The avatar appears here",
  starting: "The avatar appears here",
  connecting: "Waiting for the avatar's video…",
  live: "",
  ending: "",
  ended: "The avatar appears here",
  failed: "The avatar appears here",
};

const $ = (id) => /** @type {HTMLElement} */ (document.getElementById(id));
const ui = {
  state: $("state"),
  stateText: $("state-text"),
  caption: $("caption"),
  message: $("message"),
  note: $("note"),
  start: /** @type {HTMLButtonElement} */ ($("start")),
  end: /** @type {HTMLButtonElement} */ ($("end")),
  mic: /** @type {HTMLInputElement} */ ($("mic")),
  profile: /** @type {HTMLSelectElement} */ ($("profile")),
  avatar: $("avatar"),
  details: $("details"),
  sessionId: $("session-id"),
  sessionProfile: $("session-profile"),
  engine: $("session-engine"),
  expires: /** @type {HTMLTimeElement} */ ($("session-expires")),
  brokerUrl: /** @type {HTMLInputElement} */ ($("broker-url")),
  apiHost: /** @type {HTMLInputElement} */ ($("api-host")),
};

/** @type {{session: import("./broker.js").BrokerSession, head: AvaturnHead | null, brokerUrl: string, leaseTimer?: ReturnType<typeof setTimeout>} | null} */
let current = null;
/** The Avaturn host config.json names: with the public one, the only hosts the token may go to. */
let configuredApiHost;

function setState(state) {
  ui.state.dataset.state = state;
  ui.stateText.textContent = STATES[state];
  ui.caption.textContent = CAPTIONS[state];
  ui.caption.hidden = !CAPTIONS[state];
  const busy = state === "starting" || state === "ending";
  ui.start.disabled = busy || current !== null;
  ui.end.disabled = busy || current === null;
  ui.profile.disabled = busy || current !== null;
  ui.start.setAttribute("aria-busy", String(state === "starting"));
  ui.end.setAttribute("aria-busy", String(state === "ending"));
  document.body.dataset.state = state;
}

function showMessage(text) {
  ui.message.textContent = text ?? "";
  ui.message.hidden = !text;
}

function showNote(text) {
  ui.note.textContent = text ?? "";
  ui.note.hidden = !text;
}

function showDetails(session) {
  ui.details.hidden = !session;
  if (!session) return;
  ui.sessionId.textContent = session.session_id;
  ui.sessionProfile.textContent = profileLabel(session.profile);
  ui.engine.textContent = session.engine;
  ui.expires.dateTime = session.expires_at;
  const expires = new Date(session.expires_at);
  ui.expires.textContent = Number.isNaN(expires.getTime())
    ? session.expires_at
    : expires.toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" });
}

function settings() {
  return { brokerUrl: ui.brokerUrl.value.trim(), apiHost: ui.apiHost.value.trim() };
}

function validUrl(value) {
  try {
    const url = new URL(value);
    return url.protocol === "http:" || url.protocol === "https:";
  } catch {
    return false;
  }
}

async function start() {
  const { brokerUrl, apiHost: requestedApiHost } = settings();
  if (!validUrl(brokerUrl) || !validUrl(requestedApiHost)) {
    showMessage("The broker URL and the Avaturn API host must be http:// or https:// addresses (see Connection settings).");
    setState("failed");
    return;
  }
  try {
    trustedApiHost(requestedApiHost, configuredApiHost); // before a token exists
  } catch (error) {
    fail(error);
    return;
  }
  showMessage("");
  showNote("");
  setState("starting");
  let session;
  try {
    const profile = ui.profile.value || undefined;
    session = await createSession(brokerUrl, { idempotencyKey: crypto.randomUUID(), profile });
  } catch (error) {
    fail(error);
    return;
  }
  current = { session, head: null, brokerUrl };
  remember(sessionStorage, brokerUrl, session); // a reload ends it before offering Start again
  keepLease(session, brokerUrl);
  showDetails(session);
  // The web SDK goes to the Avaturn host the broker used for this session (its api_host), which
  // must be allow-listed too: else the session is ended before the token goes anywhere.
  let apiHost;
  try {
    apiHost = trustedApiHost(session.api_host ?? requestedApiHost, configuredApiHost);
  } catch (error) {
    await refuseHost(session, error);
    return;
  }
  setState("connecting");
  try {
    await connect(session, apiHost);
  } catch (error) {
    if (current?.session === session) fail(error); // End stays available to close the session
  }
}

/** Open the session with the web SDK: it fetches the session from Avaturn, then joins its room. */
async function connect(session, apiHost) {
  const head = new AvaturnHead(ui.avatar, {
    sessionToken: session.token,
    apiHost,
    immediatelyJoin: false, // join below, once the session fetch succeeded
    audioSource: ui.mic.checked,
  });
  if (current?.session !== session) return;
  current.head = head;
  // init(): GET {apiHost}/_sdk/v0/sessions, then resolves when the avatar's video arrives.
  const live = head.init();
  // Avaturn's messages in the avatar room reach on(type) handlers; an "error" ends the session.
  head.on("error", (message) => reportSdkError(session, message, "The avatar service reported an error."));
  const fetched = await Promise.race([sessionFetched(head), live.then(() => true)]).catch((error) => {
    reportSdkError(session, error, describeSdkError(error, apiHost));
    return false;
  });
  if (!fetched || current?.head !== head) return;
  live
    .then(() => {
      if (current?.head === head) {
        showNote("");
        setState("live");
      }
    })
    .catch(() => {});
  try {
    await head.join();
  } catch (error) {
    if (current?.head !== head) return;
    // The room join needs the internet (WebRTC); the session itself is open until End.
    console.warn("avatar room join failed", error);
    showNote("The avatar's video room could not be joined yet (it needs an internet connection). The session stays open until you end it.");
  }
}

function sessionFetched(head) {
  return new Promise((resolve, reject) => {
    const started = Date.now();
    const timer = setInterval(() => {
      if (head.session_id) {
        clearInterval(timer);
        resolve(true);
      } else if (Date.now() - started > SDK_FETCH_TIMEOUT_MS) {
        clearInterval(timer);
        reject(new Error("timeout"));
      }
    }, SDK_FETCH_POLL_MS);
  });
}

/**
 * Renew the session's lease while it is open, each time after a third of what is left of it. If
 * the broker says the session is over (the lease lapsed while the computer slept, say), so is the
 * page's.
 */
async function keepLease(session, brokerUrl) {
  let delay = LEASE_RETRY_MS;
  try {
    delay = renewDelayMs(await renewLease(brokerUrl, session));
  } catch (error) {
    if (error instanceof FriendlyError && error.kind === "ended") {
      if (current?.session === session) {
        const { head } = current;
        drop();
        await disposeHead(head);
        showDetails(null);
        showNote("The session has ended: the broker no longer holds it.");
        setState("ended");
      }
      return;
    }
  }
  if (current?.session === session) current.leaseTimer = setTimeout(() => keepLease(session, brokerUrl), delay);
}

/** Forget the current session: no more renewals, nothing left for a reload to end. */
function drop() {
  clearTimeout(current?.leaseTimer);
  current = null;
  forget(sessionStorage);
}

/**
 * The web SDK failed: report it through the broker's end route (end reason client_error, with
 * the SDK's error code), so the session stops counting and billing at once.
 */
async function reportSdkError(session, error, text) {
  if (current?.session !== session) return;
  const { head, brokerUrl } = current;
  drop();
  showMessage(text);
  ui.message.dataset.kind = "sdk-error";
  setState("ending");
  await disposeHead(head);
  try {
    await reportEnd(brokerUrl, session, { reason: "client_error", error: sdkErrorCode(error) });
    showNote("The session was ended.");
  } catch {
    showNote("The broker could not be told, so it ends the session by itself shortly.");
  }
  showDetails(null);
  setState("failed");
}

/** The broker named an Avaturn host the page does not trust: end the session (client_error), say why. */
async function refuseHost(session, error) {
  if (current?.session !== session) return;
  const { brokerUrl } = current;
  drop();
  setState("ending");
  try {
    await reportEnd(brokerUrl, session, { reason: "client_error", error: "untrusted_api_host" });
  } catch {
    // the lease, or the session's own end, finishes it
  }
  showDetails(null);
  fail(error);
}

async function end() {
  if (!current) return;
  const { session, head, brokerUrl } = current;
  clearTimeout(current.leaseTimer); // if the end fails, the lease lapses and the broker ends it
  showMessage("");
  setState("ending");
  await disposeHead(head);
  try {
    const outcome = await endSession(brokerUrl, session);
    drop();
    showNote(outcome === "already-gone" ? "The session had already ended." : "");
    showDetails(null);
    setState("ended");
  } catch (error) {
    if (current) current.head = null;
    fail(error);
  }
}

async function disposeHead(head) {
  if (!head) return;
  try {
    await head.dispose();
  } catch (error) {
    console.warn("web SDK dispose failed", error);
  }
  ui.avatar.replaceChildren();
}

function fail(error) {
  const text = error instanceof FriendlyError ? error.message : "Something unexpected went wrong. Please try again.";
  if (!(error instanceof FriendlyError)) console.error(error);
  showMessage(text);
  ui.message.dataset.kind = error instanceof FriendlyError ? error.kind : "unexpected";
  setState("failed"); // End stays enabled while a session is open
}

async function loadSettings() {
  let config = {};
  try {
    const response = await fetch(new URL("config.json", document.baseURI), { cache: "no-store" });
    if (response.ok) config = await response.json();
  } catch {
    // no config.json: the defaults
  }
  configuredApiHost = typeof config.avaturnApiHost === "string" ? config.avaturnApiHost : undefined;
  const query = new URLSearchParams(location.search);
  ui.brokerUrl.value = query.get("broker") || config.brokerUrl || DEFAULTS.brokerUrl;
  ui.apiHost.value = query.get("apiHost") || config.avaturnApiHost || DEFAULTS.avaturnApiHost;
}

/** What the picker and the details call a profile: its title, else its ID. */
function profileLabel(id) {
  const option = [...ui.profile.options].find((o) => o.value === id);
  return option?.value ? option.textContent : (id ?? "");
}

/** Offer the broker's profiles (its default first); without a list, Start asks for its default. */
async function loadProfiles() {
  const { brokerUrl } = settings();
  let profiles = [];
  try {
    if (validUrl(brokerUrl)) profiles = await listProfiles(brokerUrl);
  } catch {
    // an older broker, or none reachable yet: "The broker's default" stays the only choice
  }
  if (!profiles.length) {
    ui.profile.replaceChildren(new Option("The broker's default", ""));
    return;
  }
  ui.profile.replaceChildren(...profiles.map((p) => new Option(p.title ?? p.id, p.id)));
}

/**
 * A session an earlier load of this tab left open (a reload, a crash) is ended before Start is
 * offered: the broker would count it against this tab's cap until its lease lapsed.
 */
async function endLeftover() {
  const left = leftover(sessionStorage);
  if (!left) return;
  setState("ending");
  try {
    await reportEnd(left.brokerUrl, left, { reason: "page_closed" });
    showNote("The session this tab had open before the reload was ended.");
  } catch {
    showNote("The session this tab had open before could not be ended now; the broker ends it by itself shortly.");
  }
  forget(sessionStorage);
  setState("ended");
}

// Leaving the page (reload, tab closed, navigation) ends the session: a beacon, which the browser
// sends even once the page is gone and which needs no CORS preflight. The session stays in
// sessionStorage, so that if the beacon is lost a reload still ends it.
addEventListener("pagehide", () => {
  if (!current) return;
  const { session, head, brokerUrl } = current;
  sendEndBeacon(brokerUrl, session, { reason: "page_closed" });
  clearTimeout(current.leaseTimer);
  current = null;
  head?.dispose().catch(() => {});
  // What a page restored from the back-forward cache shows
  showDetails(null);
  showNote("The session ended when you left the page.");
  setState("ended");
});

ui.start.addEventListener("click", start);
ui.end.addEventListener("click", end);
ui.brokerUrl.addEventListener("change", loadProfiles);
document.getElementById("settings")?.addEventListener("submit", (event) => event.preventDefault());
setState("idle");
await loadSettings();
await loadProfiles();
await endLeftover();
document.body.dataset.ready = "true";
