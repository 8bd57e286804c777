// The page's client lifecycle without a browser: the end route (beacon and awaited), the lease
// renewal, the session kept for a reload, and the code an SDK error is reported with.
import assert from "node:assert/strict";
import { test } from "node:test";
import { FriendlyError, endRequest, renewDelayMs, renewLease, reportEnd, sendEndBeacon } from "../src/broker.js";
import { forget, leftover, remember, sdkErrorCode } from "../src/lifecycle.js";

const BROKER = "http://127.0.0.1:3000/";
const SESSION = { session_id: "a/b", token: "tok-1" };

function fakeFetch(status, body, headers = {}) {
  const calls = [];
  const fetch = async (url, init) => {
    calls.push({ url, init });
    return new Response(body === undefined ? null : JSON.stringify(body), { status, headers });
  };
  return { fetch, calls };
}

class MemoryStorage {
  #items = new Map();
  getItem(key) {
    return this.#items.has(key) ? this.#items.get(key) : null;
  }
  setItem(key, value) {
    this.#items.set(key, String(value));
  }
  removeItem(key) {
    this.#items.delete(key);
  }
  get length() {
    return this.#items.size;
  }
}

test("the end route's request: the token in a JSON body, the error code only when there is one", () => {
  assert.deepEqual(endRequest(BROKER, SESSION, { reason: "page_closed" }), {
    url: "http://127.0.0.1:3000/sessions/a%2Fb/end",
    body: '{"token":"tok-1","reason":"page_closed"}',
  });
  const report = JSON.parse(endRequest(BROKER, SESSION, { reason: "client_error", error: "limits_exceeded" }).body);
  assert.deepEqual(report, { token: "tok-1", reason: "client_error", error: "limits_exceeded" });
});

test("the beacon is sent with a string body (text/plain: a CORS simple request)", () => {
  const sent = [];
  const accepted = sendEndBeacon(BROKER, SESSION, { reason: "page_closed" }, (url, body) => sent.push({ url, body }) > 0);
  assert.equal(accepted, true);
  assert.equal(sent.length, 1);
  assert.equal(sent[0].url, "http://127.0.0.1:3000/sessions/a%2Fb/end");
  assert.equal(typeof sent[0].body, "string");
  assert.equal(JSON.parse(sent[0].body).token, "tok-1");
});

test("reportEnd posts text/plain without custom headers and waits for the answer", async () => {
  const ok = fakeFetch(204);
  assert.equal(await reportEnd(BROKER, SESSION, { reason: "client_error", error: "http_429" }, { fetch: ok.fetch }), "ended");
  const { url, init } = ok.calls[0];
  assert.equal(url, "http://127.0.0.1:3000/sessions/a%2Fb/end");
  assert.equal(init.method, "POST");
  assert.deepEqual(init.headers, { "content-type": "text/plain;charset=UTF-8" }, "no header that would need a preflight");
  assert.equal(init.keepalive, true);
  assert.deepEqual(JSON.parse(init.body), { token: "tok-1", reason: "client_error", error: "http_429" });
  assert.equal(await reportEnd(BROKER, SESSION, { reason: "page_closed" }, { fetch: fakeFetch(404).fetch }), "already-gone");
  const refused = await reportEnd(BROKER, SESSION, { reason: "page_closed" }, { fetch: fakeFetch(502, {}).fetch }).catch((e) => e);
  assert.ok(refused instanceof FriendlyError);
  assert.equal(refused.status, 502);
});

test("renewLease sends the token and reads the lease and the broker's clock", async () => {
  const date = "Tue, 01 Dec 2026 10:00:00 GMT";
  const { fetch, calls } = fakeFetch(200, { lease_expires_at: "2026-12-01T10:01:00Z" }, { Date: date });
  const lease = await renewLease(BROKER, SESSION, { fetch });
  assert.deepEqual(lease, { leaseExpiresAt: Date.parse("2026-12-01T10:01:00Z"), serverNow: Date.parse(date) });
  assert.equal(calls[0].url, "http://127.0.0.1:3000/sessions/a%2Fb/keepalive");
  assert.equal(calls[0].init.method, "POST");
  assert.equal(calls[0].init.headers["X-Session-Token"], "tok-1");
  // Without a readable Date header (CORS may hide it), this clock stands in
  const before = Date.now();
  const local = await renewLease(BROKER, SESSION, { fetch: fakeFetch(200, { lease_expires_at: "2026-12-01T10:01:00Z" }).fetch });
  assert.ok(local.serverNow >= before && local.serverNow <= Date.now());
});

test("renewLease: 404 or 409 means the session is over; other answers are errors", async () => {
  for (const status of [404, 409]) {
    const error = await renewLease(BROKER, SESSION, { fetch: fakeFetch(status, { status }).fetch }).catch((e) => e);
    assert.equal(error.kind, "ended", `HTTP ${status}`);
  }
  const odd = await renewLease(BROKER, SESSION, { fetch: fakeFetch(200, { lease: 1 }).fetch }).catch((e) => e);
  assert.equal(odd.kind, "bad-response");
  const down = await renewLease(BROKER, SESSION, { fetch: fakeFetch(503, {}).fetch }).catch((e) => e);
  assert.equal(down.kind, "unavailable");
});

test("a lease is renewed after a third of what is left of it, at least a second from now", () => {
  assert.equal(renewDelayMs({ leaseExpiresAt: 60_000, serverNow: 0 }), 20_000);
  assert.equal(renewDelayMs({ leaseExpiresAt: 15_000, serverNow: 0 }), 5_000);
  assert.equal(renewDelayMs({ leaseExpiresAt: 1_000, serverNow: 0 }), 1_000);
  assert.equal(renewDelayMs({ leaseExpiresAt: 0, serverNow: 9_000 }), 1_000);
});

test("the session is kept for this tab until forgotten; anything unreadable is dropped", () => {
  const storage = new MemoryStorage();
  assert.equal(leftover(storage), null);
  remember(storage, BROKER, { ...SESSION, engine: "cartesia" });
  assert.deepEqual(leftover(storage), { brokerUrl: BROKER, session_id: "a/b", token: "tok-1" });
  forget(storage);
  assert.equal(leftover(storage), null);
  for (const junk of ["{", "[]", '{"brokerUrl": "x", "session_id": "s"}', '{"brokerUrl": "x", "session_id": "s", "token": 1}']) {
    storage.setItem("avaturn-broker-demo.session", junk);
    assert.equal(leftover(storage), null, junk);
    assert.equal(storage.length, 0, `${junk} is removed`);
  }
});

test("an SDK error is reported with Avaturn's code, else its HTTP status, else the client's code", () => {
  const axiosError = (status, data) => ({ name: "AxiosError", code: "ERR_BAD_REQUEST", response: { status, data } });
  assert.equal(sdkErrorCode(axiosError(429, { detail: "Limits exceeded", code: "limits_exceeded" })), "limits_exceeded");
  assert.equal(sdkErrorCode(axiosError(409, { detail: { code: "openai-realtime-version-mismatch" } })), "openai-realtime-version-mismatch");
  assert.equal(sdkErrorCode(axiosError(400, { error: { code: "bad_token" } })), "bad_token");
  assert.equal(sdkErrorCode(axiosError(404, { detail: "Session has ended" })), "http_404");
  assert.equal(sdkErrorCode(axiosError(503, "<html>busy</html>")), "http_503");
  assert.equal(sdkErrorCode(axiosError(429, { code: "not a code!" })), "http_429");
  assert.equal(sdkErrorCode({ name: "AxiosError", code: "ERR_NETWORK", message: "Network Error" }), "ERR_NETWORK");
  // Avaturn's own message in the avatar room (head.on("error"))
  assert.equal(sdkErrorCode({ type: "error", code: "limits_exceeded" }), "limits_exceeded");
  assert.equal(sdkErrorCode({ type: "error", error: "openai-realtime-version-mismatch" }), "openai-realtime-version-mismatch");
  assert.equal(sdkErrorCode(new Error("timeout")), "sdk_error");
  assert.equal(sdkErrorCode(undefined), "sdk_error");
  assert.equal(sdkErrorCode({ code: "x".repeat(129) }), "sdk_error");
});
