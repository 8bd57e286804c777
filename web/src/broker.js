// The broker's HTTP API (GET /profiles, POST /sessions, DELETE /sessions/{id}, the end route for the
// page's beacon and error reports, the keepalive that renews a session's lease) and plain-words messages
// for everything that can go wrong. No DOM here, so node --test can check it.

/** An error meant to be shown to a person as is. */
export class FriendlyError extends Error {
  /**
   * @param {string} message plain words for the page
   * @param {{kind: string, status?: number, retryAfter?: number}} info
   */
  constructor(message, info) {
    super(message);
    this.name = "FriendlyError";
    this.kind = info.kind;
    this.status = info.status;
    this.retryAfter = info.retryAfter;
  }
}

const REQUEST_TIMEOUT_MS = 35_000; // API Gateway gives up at 30 s
const LIST_TIMEOUT_MS = 10_000; // the page waits for the profiles before it offers Start

/**
 * @typedef {{session_id: string, token: string, engine: string, avatar_id: string | null, expires_at: string,
 *   profile?: string, api_host?: string}} BrokerSession
 * @typedef {{id: string, title?: string, engine: string}} Profile
 */

/**
 * GET /profiles: the profiles the broker offers, its default first (public fields only).
 * @param {string} brokerUrl
 * @param {{fetch?: typeof fetch}} [options]
 * @returns {Promise<Profile[]>}
 * @throws {FriendlyError} when the broker cannot be reached or does not answer with a list
 */
export async function listProfiles(brokerUrl, options = {}) {
  const doFetch = options.fetch ?? fetch;
  const response = await call(brokerUrl, () =>
    doFetch(`${trimSlash(brokerUrl)}/profiles`, { signal: AbortSignal.timeout(LIST_TIMEOUT_MS) }),
  );
  if (response.status !== 200) throw await problemError(response, "list");
  const body = await response.json().catch(() => undefined);
  const valid = (p) => typeof p?.id === "string" && typeof p?.engine === "string" && (p.title === undefined || typeof p.title === "string");
  if (!Array.isArray(body) || !body.every(valid)) {
    throw new FriendlyError("The broker answered, but not with a list of profiles.", { kind: "bad-response", status: 200 });
  }
  return body.map(({ id, title, engine }) => ({ id, title, engine }));
}

/**
 * POST /sessions: a session of the profile named (else of the broker's default profile).
 * @param {string} brokerUrl
 * @param {{fetch?: typeof fetch, idempotencyKey?: string, profile?: string}} [options]
 * @returns {Promise<BrokerSession>}
 */
export async function createSession(brokerUrl, options = {}) {
  const doFetch = options.fetch ?? fetch;
  const headers = { "content-type": "application/json" };
  if (options.idempotencyKey) headers["Idempotency-Key"] = options.idempotencyKey;
  const response = await call(brokerUrl, () =>
    doFetch(`${trimSlash(brokerUrl)}/sessions`, {
      method: "POST",
      headers,
      body: JSON.stringify(options.profile ? { profile: options.profile } : {}),
      signal: AbortSignal.timeout(REQUEST_TIMEOUT_MS),
    }),
  );
  if (response.status !== 201) throw await problemError(response, "start");
  const body = await response.json();
  if (typeof body?.session_id !== "string" || typeof body?.token !== "string") {
    throw new FriendlyError("The broker answered, but not with a session. Is the broker URL right?", {
      kind: "bad-response",
      status: response.status,
    });
  }
  return body;
}

/**
 * DELETE /sessions/{id}, proving ownership with the session token (anonymous mode).
 * Resolves when the session is over (204, or 404: already gone).
 * @param {string} brokerUrl
 * @param {{session_id: string, token: string}} session
 * @param {{fetch?: typeof fetch, keepalive?: boolean}} [options]
 * @returns {Promise<"ended" | "already-gone">}
 */
export async function endSession(brokerUrl, session, options = {}) {
  const doFetch = options.fetch ?? fetch;
  const response = await call(brokerUrl, () =>
    doFetch(`${trimSlash(brokerUrl)}/sessions/${encodeURIComponent(session.session_id)}`, {
      method: "DELETE",
      headers: { "X-Session-Token": session.token },
      keepalive: options.keepalive ?? false,
      signal: options.keepalive ? undefined : AbortSignal.timeout(REQUEST_TIMEOUT_MS),
    }),
  );
  if (response.status === 204) return "ended";
  if (response.status === 404) return "already-gone";
  throw await problemError(response, "end");
}

/**
 * The end route's URL and body (POST /sessions/{id}/end): the token proves ownership, so the
 * request needs no custom header and, sent as text/plain, is a CORS simple request (no preflight)
 * that navigator.sendBeacon can make while the page goes away.
 * @param {string} brokerUrl
 * @param {{session_id: string, token: string}} session
 * @param {{reason: "page_closed" | "client_error" | "user", error?: string}} why
 */
export function endRequest(brokerUrl, session, why) {
  const body = { token: session.token, reason: why.reason };
  if (why.error) body.error = why.error;
  return { url: `${trimSlash(brokerUrl)}/sessions/${encodeURIComponent(session.session_id)}/end`, body: JSON.stringify(body) };
}

/**
 * Queue the end of a session with navigator.sendBeacon (on pagehide: the browser sends it even
 * once the page is gone). A string body goes as text/plain;charset=UTF-8.
 * @returns {boolean} whether the browser accepted it
 */
export function sendEndBeacon(brokerUrl, session, why, sendBeacon = (url, body) => navigator.sendBeacon(url, body)) {
  const { url, body } = endRequest(brokerUrl, session, why);
  return sendBeacon(url, body);
}

/**
 * End a session through the end route and wait for the answer (a leftover session on load, an
 * SDK error). Resolves when the session is over (204, or 404: already gone).
 * @param {string} brokerUrl
 * @param {{session_id: string, token: string}} session
 * @param {{reason: "page_closed" | "client_error" | "user", error?: string}} why
 * @param {{fetch?: typeof fetch}} [options]
 * @returns {Promise<"ended" | "already-gone">}
 */
export async function reportEnd(brokerUrl, session, why, options = {}) {
  const doFetch = options.fetch ?? fetch;
  const { url, body } = endRequest(brokerUrl, session, why);
  const response = await call(brokerUrl, () =>
    doFetch(url, {
      method: "POST",
      headers: { "content-type": "text/plain;charset=UTF-8" },
      body,
      keepalive: true,
    }),
  );
  if (response.status === 204) return "ended";
  if (response.status === 404) return "already-gone";
  throw await problemError(response, "end");
}

/**
 * POST /sessions/{id}/keepalive: renew the session's lease.
 * @param {string} brokerUrl
 * @param {{session_id: string, token: string}} session
 * @param {{fetch?: typeof fetch}} [options]
 * @returns {Promise<{leaseExpiresAt: number, serverNow: number}>} epoch milliseconds: when the lease
 *   ends, and the broker's time of the answer (its Date header when readable, else this clock)
 * @throws {FriendlyError} kind "ended" when the session is over (404, 409), else as other calls
 */
export async function renewLease(brokerUrl, session, options = {}) {
  const doFetch = options.fetch ?? fetch;
  const response = await call(brokerUrl, () =>
    doFetch(`${trimSlash(brokerUrl)}/sessions/${encodeURIComponent(session.session_id)}/keepalive`, {
      method: "POST",
      headers: { "X-Session-Token": session.token },
      signal: AbortSignal.timeout(REQUEST_TIMEOUT_MS),
    }),
  );
  if (response.status === 404 || response.status === 409) {
    throw new FriendlyError("The session has ended.", { kind: "ended", status: response.status });
  }
  if (response.status !== 200) throw await problemError(response, "renew");
  const leaseExpiresAt = Date.parse((await response.json())?.lease_expires_at);
  if (Number.isNaN(leaseExpiresAt)) {
    throw new FriendlyError("The broker answered the keepalive, but not with a lease.", { kind: "bad-response", status: 200 });
  }
  const date = Date.parse(response.headers.get("Date") ?? "");
  return { leaseExpiresAt, serverNow: Number.isNaN(date) ? Date.now() : date };
}

/**
 * When to renew a lease again: after a third of what is left of it (so two renewals may fail
 * before it lapses), at least a second from now.
 * @param {{leaseExpiresAt: number, serverNow: number}} lease
 * @returns {number} milliseconds
 */
export function renewDelayMs({ leaseExpiresAt, serverNow }) {
  return Math.max(1000, Math.floor((leaseExpiresAt - serverNow) / 3));
}

async function call(brokerUrl, request) {
  try {
    return await request();
  } catch (error) {
    if (error?.name === "TimeoutError" || error?.name === "AbortError") {
      throw new FriendlyError("The broker did not answer in time. Please try again.", { kind: "timeout" });
    }
    // fetch rejects with a bare TypeError for refused connections, DNS and CORS failures alike.
    throw new FriendlyError(
      `The broker can't be reached at ${brokerUrl}. Check that it is running and that it allows this page's origin (CORS).`,
      { kind: "unreachable" },
    );
  }
}

/**
 * Turn a broker error response (RFC 9457 problem+json) into plain words.
 * @param {Response} response
 * @param {"start" | "end" | "renew" | "list"} action
 */
export async function problemError(response, action) {
  const status = response.status;
  let problem = {};
  try {
    problem = await response.json();
  } catch {
    // not JSON (a proxy's page, API Gateway's own error): the status code is enough
  }
  const retryAfter = parseRetryAfter(response.headers.get("Retry-After"));
  return new FriendlyError(describeProblem(status, problem, action, retryAfter), {
    kind: kindOf(status),
    status,
    retryAfter,
  });
}

/**
 * @param {number} status
 * @param {{type?: string, detail?: string}} problem
 * @param {"start" | "end" | "renew" | "list"} action
 * @param {number | undefined} retryAfter seconds, when the broker said (and CORS let us read it)
 */
export function describeProblem(status, problem, action, retryAfter) {
  const type = typeof problem?.type === "string" ? problem.type : "";
  if (status === 429 || type.endsWith(":session-cap-reached")) {
    const when = retryAfter ? `, or try again in about ${formatSeconds(retryAfter)}` : " and try again";
    return `You already have the maximum number of avatar sessions open (perhaps in another tab). End one${when}.`;
  }
  if (status === 401) return "This broker only serves signed-in users. Sign in and try again.";
  if (status === 502) {
    return action === "end"
      ? "The avatar service did not confirm the end of the session. The broker will end it automatically shortly."
      : "The avatar service is having trouble right now (it answered with an error). Please try again in a moment.";
  }
  if (status === 504) {
    return action === "end"
      ? "The avatar service did not answer in time. The broker will end the session automatically shortly."
      : "The avatar service did not answer in time. Please try again in a moment.";
  }
  if (status === 503) return "The broker is not fully set up or its storage is unavailable right now. Please try again later.";
  if (status === 409) return "The same request is still being processed. Wait a moment and try again.";
  if (status >= 400 && status < 500) {
    const detail = typeof problem?.detail === "string" && problem.detail ? ` (${problem.detail})` : "";
    return `The broker refused the request${detail}.`;
  }
  return `The broker had an internal problem (HTTP ${status}). Please try again later.`;
}

function kindOf(status) {
  if (status === 429) return "cap-reached";
  if (status === 502 || status === 504) return "upstream";
  if (status === 503) return "unavailable";
  if (status === 401) return "unauthenticated";
  return status < 500 ? "rejected" : "broker-error";
}

/** Why the web SDK could not fetch its session from Avaturn, in plain words. */
export function describeSdkError(error, apiHost) {
  const status = error?.response?.status;
  if (status === 401 || status === 404 || status === 410) {
    return "Avaturn no longer knows this session (it may have ended or expired). Start a new one.";
  }
  if (typeof status === "number") return `Avaturn answered with an error (HTTP ${status}). Please try again.`;
  return `Avaturn can't be reached at ${apiHost}. Check your connection (or the Avaturn API host setting).`;
}

/** Seconds from a Retry-After header (delta-seconds form only). */
export function parseRetryAfter(value) {
  if (!value || !/^\d+$/.test(value.trim())) return undefined;
  const seconds = Number(value.trim());
  return seconds > 0 ? seconds : undefined;
}

export function formatSeconds(seconds) {
  if (seconds < 90) return `${seconds} seconds`;
  return `${Math.round(seconds / 60)} minutes`;
}

function trimSlash(url) {
  return url.replace(/\/+$/, "");
}
