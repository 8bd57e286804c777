// The broker's HTTP API (POST /sessions, DELETE /sessions/{id}) and plain-words messages for
// everything that can go wrong. No DOM here, so node --test can check it.

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

/**
 * @typedef {{session_id: string, token: string, engine: string, avatar_id: string | null, expires_at: string}} BrokerSession
 */

/**
 * POST /sessions.
 * @param {string} brokerUrl
 * @param {{fetch?: typeof fetch, idempotencyKey?: string}} [options]
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
      body: "{}",
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
 * @param {"start" | "end"} action
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
 * @param {"start" | "end"} action
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
