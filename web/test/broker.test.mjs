// The broker client's plain-words messages and its HTTP use, with a fake fetch (no network).
import assert from "node:assert/strict";
import { test } from "node:test";
import {
  FriendlyError,
  createSession,
  describeProblem,
  describeSdkError,
  endSession,
  listProfiles,
  parseRetryAfter,
} from "../src/broker.js";

const BROKER = "http://127.0.0.1:3000/";
const CAP = "tag:avaturn-session-broker,2026:problem:session-cap-reached";
const problemJson = { "content-type": "application/problem+json" };

function fakeFetch(status, body, headers = {}) {
  const calls = [];
  const fetch = async (url, init) => {
    calls.push({ url, init });
    return new Response(body === undefined ? null : JSON.stringify(body), { status, headers });
  };
  return { fetch, calls };
}

test("createSession posts an empty JSON object with an Idempotency-Key and returns the session", async () => {
  const session = { session_id: "s1", token: "t1", engine: "openai-realtime", avatar_id: null, expires_at: "2026-01-01T00:00:00Z" };
  const { fetch, calls } = fakeFetch(201, session);
  assert.deepEqual(await createSession(BROKER, { fetch, idempotencyKey: "k1" }), session);
  assert.equal(calls[0].url, "http://127.0.0.1:3000/sessions");
  assert.equal(calls[0].init.method, "POST");
  assert.equal(calls[0].init.body, "{}");
  assert.equal(calls[0].init.headers["Idempotency-Key"], "k1");
});

test("createSession names the chosen profile, and the 201 says which one and the Avaturn host", async () => {
  const session = {
    session_id: "s1",
    token: "t1",
    engine: "cartesia",
    avatar_id: null,
    expires_at: "2026-01-01T00:00:00Z",
    profile: "sales",
    api_host: "https://api.avaturn.live",
  };
  const { fetch, calls } = fakeFetch(201, session);
  assert.deepEqual(await createSession(BROKER, { fetch, profile: "sales" }), session);
  assert.equal(calls[0].init.body, '{"profile":"sales"}');
});

test("listProfiles returns the public fields, and refuses anything that is not a list of profiles", async () => {
  const listed = [{ id: "concierge", title: "Concierge", engine: "openai-realtime" }, { id: "support", engine: "external" }];
  const ok = fakeFetch(200, listed);
  assert.deepEqual(await listProfiles(BROKER, { fetch: ok.fetch }), [listed[0], { id: "support", title: undefined, engine: "external" }]);
  assert.equal(ok.calls[0].url, "http://127.0.0.1:3000/profiles");
  assert.equal(ok.calls[0].init.method, undefined, "a plain GET (a CORS simple request)");
  for (const body of [{ profiles: listed }, [{ id: 1, engine: "cartesia" }], [{ id: "x" }], [{ id: "x", engine: "cartesia", title: 7 }]]) {
    const error = await listProfiles(BROKER, { fetch: fakeFetch(200, body).fetch }).catch((e) => e);
    assert.ok(error instanceof FriendlyError, JSON.stringify(body));
    assert.equal(error.kind, "bad-response");
  }
  const broken = await listProfiles(BROKER, { fetch: fakeFetch(503, { status: 503 }, problemJson).fetch }).catch((e) => e);
  assert.equal(broken.kind, "unavailable");
});

test("the cap refusal names the cap and, when readable, when to retry", async () => {
  const { fetch } = fakeFetch(429, { type: CAP, status: 429, detail: "at most 1" }, { ...problemJson, "Retry-After": "60" });
  const error = await createSession(BROKER, { fetch }).catch((e) => e);
  assert.ok(error instanceof FriendlyError);
  assert.equal(error.kind, "cap-reached");
  assert.equal(error.retryAfter, 60);
  assert.match(error.message, /maximum number of avatar sessions open.*try again in about 60 seconds/);
  // Without Retry-After (a CORS response that does not expose it) the advice still reads well.
  assert.match(describeProblem(429, { type: CAP }, "start", undefined), /End one and try again\.$/);
});

test("upstream and broker failures read as plain words, never as raw bodies", () => {
  assert.match(describeProblem(502, {}, "start"), /avatar service is having trouble/);
  assert.match(describeProblem(502, {}, "end"), /will end it automatically/);
  assert.match(describeProblem(504, {}, "start"), /did not answer in time/);
  assert.match(describeProblem(503, {}, "start"), /not fully set up/);
  assert.match(describeProblem(401, {}, "start"), /signed-in users/);
  assert.match(describeProblem(422, { detail: "engine not allowed" }, "start"), /refused the request \(engine not allowed\)/);
  assert.match(describeProblem(500, { detail: "Traceback ..." }, "start"), /internal problem \(HTTP 500\)/);
});

test("a broker that cannot be reached is named", async () => {
  const fetch = async () => {
    throw new TypeError("Failed to fetch");
  };
  const error = await createSession(BROKER, { fetch }).catch((e) => e);
  assert.equal(error.kind, "unreachable");
  assert.match(error.message, /can't be reached at http:\/\/127\.0\.0\.1:3000\//);
});

test("endSession proves ownership with X-Session-Token; 404 means already gone", async () => {
  const ok = fakeFetch(204);
  assert.equal(await endSession(BROKER, { session_id: "a/b", token: "t" }, { fetch: ok.fetch }), "ended");
  assert.equal(ok.calls[0].url, "http://127.0.0.1:3000/sessions/a%2Fb");
  assert.equal(ok.calls[0].init.method, "DELETE");
  assert.equal(ok.calls[0].init.headers["X-Session-Token"], "t");
  const gone = fakeFetch(404, { status: 404 }, problemJson);
  assert.equal(await endSession(BROKER, { session_id: "s", token: "t" }, { fetch: gone.fetch }), "already-gone");
});

test("web SDK errors: an ended session versus an unreachable Avaturn", () => {
  assert.match(describeSdkError({ response: { status: 401 } }, "http://sim"), /no longer knows this session/);
  assert.match(describeSdkError(new Error("Network Error"), "http://sim"), /can't be reached at http:\/\/sim/);
});

test("Retry-After: delta seconds only", () => {
  assert.equal(parseRetryAfter("60"), 60);
  assert.equal(parseRetryAfter(" 5 "), 5);
  assert.equal(parseRetryAfter("0"), undefined);
  assert.equal(parseRetryAfter("Wed, 21 Oct 2015 07:28:00 GMT"), undefined);
  assert.equal(parseRetryAfter(null), undefined);
});
