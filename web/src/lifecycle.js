// What outlives a page load: the open session kept in sessionStorage (so a reload can end it
// before offering Start), and the code an SDK error is reported with. No DOM here (node --test).

const STORAGE_KEY = "avaturn-broker-demo.session";
const ERROR_CODE = /^[A-Za-z0-9._:-]{1,128}$/; // what the broker's end route accepts

/**
 * Remember the open session for this tab (sessionStorage: gone with the tab, kept across reloads).
 * @param {Storage} storage
 * @param {string} brokerUrl the broker that issued it
 * @param {{session_id: string, token: string}} session
 */
export function remember(storage, brokerUrl, session) {
  storage.setItem(STORAGE_KEY, JSON.stringify({ brokerUrl, session_id: session.session_id, token: session.token }));
}

/** @param {Storage} storage */
export function forget(storage) {
  storage.removeItem(STORAGE_KEY);
}

/**
 * The session an earlier load of this tab left open, if any (anything unreadable is dropped).
 * @param {Storage} storage
 * @returns {{brokerUrl: string, session_id: string, token: string} | null}
 */
export function leftover(storage) {
  let kept;
  try {
    kept = JSON.parse(storage.getItem(STORAGE_KEY) ?? "null");
  } catch {
    kept = null;
  }
  const valid = ["brokerUrl", "session_id", "token"].every((name) => typeof kept?.[name] === "string" && kept[name]);
  if (!valid) {
    forget(storage);
    return null;
  }
  return { brokerUrl: kept.brokerUrl, session_id: kept.session_id, token: kept.token };
}

/**
 * The code to report an error of the Avaturn web SDK with. The SDK surfaces errors two ways: its
 * init() rejects with the HTTP client's error when Avaturn refuses the session fetch (the code is
 * in the body Avaturn sent, else its status), and Avaturn's messages in the avatar room reach
 * `head.on(type)` handlers (an "error" message carries its code).
 * @param {unknown} error an axios error, an app message, or anything thrown
 * @returns {string} e.g. "limits_exceeded", "http_429", "ERR_NETWORK" or "sdk_error"
 */
export function sdkErrorCode(error) {
  const data = error?.response ? error.response.data : error;
  const named = [data?.code, data?.error?.code, data?.detail?.code, data?.error].find(
    (value) => typeof value === "string" && ERROR_CODE.test(value),
  );
  if (named) return named;
  const status = error?.response?.status;
  if (Number.isInteger(status)) return `http_${status}`;
  if (typeof error?.code === "string" && ERROR_CODE.test(error.code)) return error.code;
  return "sdk_error";
}
