// End-to-end: the demo page in headless Chromium (Debian's, through playwright-core; no browser
// download) against a running local stack: the broker on sam local, the Avaturn simulator, and
// the page served by vite preview. Started by tests/e2e/test_demo_page.py, which brings the stack
// up and passes its URLs:
//
//   DEMO_URL=http://127.0.0.1:5273 BROKER_URL=http://127.0.0.1:3200 \
//   CONTROL_URL=http://127.0.0.1:4213/_control node --test e2e/
//
// The broker must run with MAX_ACTIVE_SESSIONS_PER_OWNER=1 (the cap case), SESSION_LEASE_SECONDS=15
// (the page renews the lease) and an empty registry.
// Everything outside 127.0.0.1 is blocked: the web SDK's WebRTC room join (Daily) needs the
// internet, so the page stops at "connecting" after the SDK fetched its session from Avaturn.

import assert from "node:assert/strict";
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import path from "node:path";
import { after, afterEach, before, beforeEach, test } from "node:test";
import { createRequire } from "node:module";
import { fileURLToPath } from "node:url";
import { chromium } from "playwright-core";

const here = path.dirname(fileURLToPath(import.meta.url));
const AXE = createRequire(import.meta.url).resolve("axe-core/axe.min.js");
const DEMO_URL = required("DEMO_URL").replace(/\/$/, "");
const BROKER_URL = required("BROKER_URL").replace(/\/$/, "");
const CONTROL_URL = required("CONTROL_URL").replace(/\/$/, "");
const ARTIFACTS = process.env.ARTIFACTS_DIR ?? path.resolve(here, "..", "..", "artifacts", "e2e");
const CHROMIUM = process.env.CHROMIUM ?? "/usr/bin/chromium";
const DESKTOP = { width: 1280, height: 800 };
const PHONE = { width: 390, height: 844 };
const CHROMIUM_FLAGS = [
  "--headless",
  "--no-sandbox",
  "--disable-gpu",
  "--disable-background-networking",
  "--disable-component-update",
  "--disable-sync",
  "--no-first-run",
];

let context;
let profile;
const blocked = new Set();
const consoleMessages = [];

function required(name) {
  const value = process.env[name];
  if (!value) throw new Error(`${name} is not set (see the header of ${path.basename(import.meta.url)})`);
  return value;
}

async function control(method, route, body) {
  const response = await fetch(`${CONTROL_URL}${route}`, {
    method,
    headers: body === undefined ? {} : { "content-type": "application/json" },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  assert.ok(response.ok, `control ${method} ${route}: HTTP ${response.status}`);
  const text = await response.text();
  return text ? JSON.parse(text) : null;
}

async function eventually(what, probe, timeoutMs = 10_000) {
  const deadline = Date.now() + timeoutMs;
  let last;
  while (Date.now() < deadline) {
    last = await probe();
    if (last) return last;
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  assert.fail(`timed out waiting for ${what}`);
}

async function shot(page, name, options = {}) {
  const file = path.join(ARTIFACTS, `${name}.png`);
  await page.screenshot({ path: file, ...options });
  return file;
}

async function openDemo(query = "", viewport = DESKTOP) {
  const page = await context.newPage();
  await page.setViewportSize(viewport);
  page.on("console", (message) => consoleMessages.push(`${message.type()}: ${message.text()}`));
  await page.goto(`${DEMO_URL}/${query}`);
  await page.locator("body[data-ready=true]").waitFor();
  return page;
}

/** axe-core's WCAG 2.1 A/AA rules on the page as it is now: no violations. */
async function assertAccessible(page, when) {
  await page.addScriptTag({ path: AXE });
  const violations = await page.evaluate(async () => {
    const result = await window.axe.run(document, {
      runOnly: { type: "tag", values: ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa", "best-practice"] },
    });
    return result.violations.map((v) => `${v.id} (${v.impact}): ${v.nodes.map((n) => n.target.join(" ")).join(", ")}`);
  });
  assert.deepEqual(violations, [], `accessibility violations ${when}`);
}

const state = (page) => page.locator("#state");
const startButton = (page) => page.getByRole("button", { name: "Start" });
const endButton = (page) => page.getByRole("button", { name: "End" });

async function startSession(page) {
  const created = page.waitForResponse(
    (response) => response.url() === `${BROKER_URL}/sessions` && response.request().method() === "POST",
  );
  await startButton(page).click();
  return created;
}

async function freePort() {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once("error", reject);
    server.listen(0, "127.0.0.1", () => {
      const { port } = server.address();
      server.close(() => resolve(port));
    });
  });
}

before(async () => {
  mkdirSync(ARTIFACTS, { recursive: true });
  profile = mkdtempSync(path.join(tmpdir(), "demo-e2e-profile-"));
  context = await chromium.launchPersistentContext(profile, {
    executablePath: CHROMIUM,
    headless: true,
    args: CHROMIUM_FLAGS,
    viewport: DESKTOP,
    reducedMotion: "reduce",
  });
  // Only the local stack is reachable; anything else (Daily's bundle, telemetry) fails fast.
  await context.route(
    (url) => !["127.0.0.1", "localhost"].includes(url.hostname),
    (route) => {
      blocked.add(new URL(route.request().url()).host);
      return route.abort("internetdisconnected");
    },
  );
});

after(async () => {
  if (context) await composeOverview().catch((error) => console.log(`# no overview image: ${error}`));
  await context?.close();
  if (profile) rmSync(profile, { recursive: true, force: true });
  if (blocked.size) console.log(`# blocked outside requests to: ${[...blocked].sort().join(", ")}`);
});

beforeEach(async () => {
  await control("DELETE", "/faults");
});

afterEach(async () => {
  for (const page of context.pages()) await page.close();
  // Whatever a test left open, closing its page ended (the page's beacon): nothing leaks into the next.
  await eventually("no Avaturn session left open", async () => (await control("GET", "/sessions")).active.length === 0);
});

/** One image with the desktop and the phone view side by side (the README's screenshot). */
async function composeOverview() {
  const desktop = path.join(ARTIFACTS, "02-connecting-desktop.png");
  const phone = path.join(ARTIFACTS, "03-connecting-phone.png");
  if (!existsSync(desktop) || !existsSync(phone)) return;
  const src = (file) => `data:image/png;base64,${readFileSync(file).toString("base64")}`;
  const page = await context.newPage();
  await page.setViewportSize({ width: 1760, height: 900 });
  await page.setContent(`<!doctype html><body style="margin:0;background:#dfe3ea;display:flex;gap:40px;
    align-items:center;justify-content:center;height:900px">
    <img src="${src(desktop)}" style="height:800px;border-radius:10px;box-shadow:0 4px 24px #0003">
    <img src="${src(phone)}" style="height:800px;border-radius:24px;border:8px solid #1b1f24;box-shadow:0 4px 24px #0003">
    </body>`);
  await page.evaluate(() => Promise.all([...document.images].map((image) => image.decode())));
  await shot(page, "00-overview");
  await page.close();
}

test("Start gets a session from the broker, the web SDK fetches it from Avaturn, End terminates it", async () => {
  const page = await openDemo();
  await assert.doesNotReject(state(page).getByText("No session").waitFor());
  assert.equal(await endButton(page).isDisabled(), true, "End is disabled without a session");
  await shot(page, "01-idle-desktop");
  await assertAccessible(page, "when idle");

  const response = await startSession(page);
  assert.equal(response.status(), 201);
  assert.equal(response.headers()["access-control-allow-origin"], DEMO_URL, "the broker allows the demo's origin");
  const session = await response.json();

  // The real SDK asked the simulated Avaturn for its session, with the token the broker issued.
  const fetch = await eventually("the web SDK's GET /_sdk/v0/sessions", async () => {
    const { sdk_fetches: fetches } = await control("GET", "/sdk-fetches");
    return fetches.find((f) => f.token === session.token);
  });
  assert.equal(fetch.status, 200);
  assert.equal(fetch.origin, DEMO_URL);
  const requests = await control("GET", "/requests?endpoint=avaturn.sdk");
  const sdkGet = requests.requests.find((r) => r.method === "GET" && r.headers["x-session-token"] === session.token);
  assert.ok(sdkGet, "the SDK sent X-Session-Token");
  assert.equal(sdkGet.path, "/_sdk/v0/sessions");

  await state(page).and(page.locator("[data-state=connecting]")).waitFor();
  await assert.doesNotReject(state(page).getByText("Connecting to the avatar").waitFor());
  assert.equal(await page.locator("#session-id").textContent(), session.session_id);
  assert.equal(await startButton(page).isDisabled(), true);
  assert.equal(await endButton(page).isEnabled(), true);
  // Offline, the room join fails: the page says so without treating the session as failed.
  await page.locator("#note").getByText("video room").waitFor({ timeout: 15_000 });
  assert.equal(await page.locator("#message").isHidden(), true, "no error message while connecting");
  await shot(page, "02-connecting-desktop");
  await assertAccessible(page, "while connecting");
  await page.setViewportSize(PHONE);
  await shot(page, "03-connecting-phone");
  await assertAccessible(page, "while connecting, on a phone");
  const scrollWidth = await page.evaluate(() => document.documentElement.scrollWidth);
  assert.ok(scrollWidth <= PHONE.width, `no horizontal scrolling on a phone (${scrollWidth}px)`);
  await page.setViewportSize(DESKTOP);

  const upstream = await control("GET", `/sessions/${fetch.session_id}`);
  assert.equal(upstream.status, "active");
  assert.equal(upstream.joined, true);

  const deleted = page.waitForResponse((r) => r.request().method() === "DELETE");
  await endButton(page).click();
  const deleteResponse = await deleted;
  assert.equal(deleteResponse.url(), `${BROKER_URL}/sessions/${session.session_id}`);
  assert.equal(deleteResponse.status(), 204);
  assert.equal(deleteResponse.request().headers()["x-session-token"], session.token);
  await state(page).and(page.locator("[data-state=ended]")).waitFor();
  await assert.doesNotReject(state(page).getByText("Session ended").waitFor());

  const ended = await control("GET", `/sessions/${fetch.session_id}`);
  assert.equal(ended.status, "ended");
  assert.equal(ended.end_reason, "deleted");
  assert.equal(await startButton(page).isEnabled(), true, "a new session can be started");
  await shot(page, "04-ended-desktop");

  // The SDK released its call object: the same page opens a second session.
  const again = await startSession(page);
  assert.equal(again.status(), 201);
  await state(page).and(page.locator("[data-state=connecting]")).waitFor();
  await endButton(page).click();
  await state(page).and(page.locator("[data-state=ended]")).waitFor();
});

test("a second session beyond the per-owner cap shows the cap message", async () => {
  const first = await openDemo();
  assert.equal((await startSession(first)).status(), 201);
  await state(first).and(first.locator("[data-state=connecting]")).waitFor();

  const second = await openDemo();
  const refused = await startSession(second);
  assert.equal(refused.status(), 429);
  const alert = second.getByRole("alert");
  await alert.getByText("You already have the maximum number of avatar sessions open").waitFor();
  await state(second).and(second.locator("[data-state=failed]")).waitFor();
  assert.equal(await startButton(second).isEnabled(), true, "Start can be tried again");
  await shot(second, "05-cap-reached-desktop");
  await assertAccessible(second, "with an error message");
  await second.setViewportSize(PHONE);
  await shot(second, "06-cap-reached-phone", { fullPage: true });

  await endButton(first).click();
  await state(first).and(first.locator("[data-state=ended]")).waitFor();
  const { active } = await control("GET", "/sessions");
  assert.deepEqual(active, [], "no Avaturn session left open");

  // With the first one ended, the second page gets its session.
  assert.equal((await startSession(second)).status(), 201);
  await state(second).and(second.locator("[data-state=connecting]")).waitFor();
  assert.equal(await second.locator("#message").isHidden(), true, "the old message is gone");
  await endButton(second).click();
  await state(second).and(second.locator("[data-state=ended]")).waitFor();
});

test("Avaturn down: the page says the avatar service has trouble", async () => {
  await control("POST", "/faults", { endpoint: "avaturn.create", kind: "status", status: 503, count: 1 });
  const page = await openDemo();
  const response = await startSession(page);
  assert.equal(response.status(), 502);
  await page.getByRole("alert").getByText("The avatar service is having trouble").waitFor();
  await state(page).and(page.locator("[data-state=failed]")).waitFor();
  assert.equal(await endButton(page).isDisabled(), true, "nothing to end");
  await shot(page, "07-upstream-down-desktop");
});

test("broker unreachable: the page says so in plain words", async () => {
  const nowhere = `http://127.0.0.1:${await freePort()}`;
  const page = await openDemo(`?broker=${encodeURIComponent(nowhere)}`);
  await startButton(page).click();
  await page.getByRole("alert").getByText(`The broker can't be reached at ${nowhere}`).waitFor();
  await state(page).and(page.locator("[data-state=failed]")).waitFor();
  await shot(page, "08-broker-unreachable-desktop");
});

test("an Avaturn host that is not allow-listed is refused before a session exists", async () => {
  // ?apiHost= from a link is the page's input too: the SDK would send the token there
  const page = await openDemo(`?apiHost=${encodeURIComponent("https://avaturn-api.attacker.example")}`);
  const requests = [];
  page.on("request", (request) => requests.push(request.url()));
  await startButton(page).click();
  await page.getByRole("alert").getByText("is not a trusted Avaturn API host").waitFor();
  await state(page).and(page.locator("[data-state=failed]")).waitFor();
  assert.deepEqual(requests, [], "no request left the page: no session, no token");
  assert.equal(await endButton(page).isDisabled(), true, "nothing to end");
  await shot(page, "09-untrusted-api-host-desktop");
});

// --- Profiles: the broker's recipes, picked by ID; the Avaturn host the broker names ----------------

test("the profile picker offers the broker's profiles, and Start opens the one chosen", async () => {
  const listed = await (await fetch(`${BROKER_URL}/profiles`)).json();
  assert.ok(listed.length >= 3, "the example profiles");
  const page = await openDemo();
  const picker = page.getByLabel("Profile");
  // The picker lists the broker's profiles by title, its default first (and preselected)
  const options = await picker.locator("option").evaluateAll((os) => os.map((o) => ({ value: o.value, text: o.textContent })));
  assert.deepEqual(options, listed.map((p) => ({ value: p.id, text: p.title ?? p.id })));
  assert.equal(await picker.inputValue(), listed[0].id);
  // When a person picks the Cartesia profile and starts
  const chosen = listed.find((p) => p.engine === "cartesia");
  await picker.selectOption(chosen.id);
  const response = await startSession(page);
  // Then the broker is asked for that profile, by its ID alone, and opens it
  assert.deepEqual(JSON.parse(response.request().postData()), { profile: chosen.id });
  assert.equal(response.status(), 201);
  const session = await response.json();
  assert.equal(session.profile, chosen.id);
  assert.equal(session.engine, "cartesia");
  const [create] = (await control("GET", "/requests?endpoint=avaturn.create")).requests.filter((r) => r.status === 200).slice(-1);
  assert.equal(create.body.conversation_engine.type, "cartesia");
  // And the web SDK fetched it from the Avaturn host the 201 names
  const fetched = await eventually("the web SDK's session fetch", async () => {
    const { sdk_fetches: fetches } = await control("GET", "/sdk-fetches");
    return fetches.find((f) => f.token === session.token);
  });
  assert.equal(fetched.status, 200);
  const config = await (await fetch(`${DEMO_URL}/config.json`)).json();
  assert.equal(session.api_host, config.avaturnApiHost, "the broker names the host the browser reaches");
  await state(page).and(page.locator("[data-state=connecting]")).waitFor();
  assert.equal(await page.locator("#session-profile").textContent(), chosen.title ?? chosen.id);
  assert.equal(await picker.isDisabled(), true, "the profile cannot change under an open session");
  await shot(page, "11-profile-picked-desktop");
  await assertAccessible(page, "with a profile picked");
  await endButton(page).click();
  await state(page).and(page.locator("[data-state=ended]")).waitFor();
  assert.equal(await picker.isEnabled(), true);
});

test("a 201 naming an Avaturn host outside the allow-list: the session is ended and its token goes nowhere", async () => {
  const attacker = "https://avaturn-api.attacker.example";
  const page = await openDemo();
  // Given a broker whose 201 names a foreign host (a compromised or misconfigured deployment)
  await page.route(`${BROKER_URL}/sessions`, async (route) => {
    if (route.request().method() !== "POST") return route.continue();
    const response = await route.fetch();
    const body = { ...(await response.json()), api_host: attacker };
    return route.fulfill({ response, json: body });
  });
  const ends = endRequests(page);
  const session = await (await startSession(page)).json();
  // Then the page refuses the host, ends the session as a client error, and the SDK never starts
  await page.getByRole("alert").getByText("is not a trusted Avaturn API host").waitFor();
  await state(page).and(page.locator("[data-state=failed]")).waitFor();
  await eventually("the end route", async () => ends.length === 1);
  assert.deepEqual(JSON.parse(ends[0].body), { token: session.token, reason: "client_error", error: "untrusted_api_host" });
  const view = await brokerView(session);
  assert.deepEqual([view.status, view.end_reason, view.client_error], ["terminated", "client_error", "untrusted_api_host"]);
  const { sdk_fetches: fetches } = await control("GET", "/sdk-fetches");
  assert.equal(fetches.filter((f) => f.token === session.token).length, 0);
  assert.ok(!blocked.has(new URL(attacker).host), "nothing was sent to the foreign host");
  assert.equal(await endButton(page).isDisabled(), true, "nothing left to end");
});

test("the page never shows or logs the session token", async () => {
  const page = await openDemo();
  const response = await startSession(page);
  const { token } = await response.json();
  await state(page).and(page.locator("[data-state=connecting]")).waitFor();
  const html = await page.content();
  assert.ok(!html.includes(token), "token in the DOM");
  assert.ok(!consoleMessages.some((text) => text.includes(token)), "token in a console message");
  await endButton(page).click();
  await state(page).and(page.locator("[data-state=ended]")).waitFor();
});

// --- Client lifecycle: reload, tab close, SDK errors, the lease ------------------------------------

/** The broker's view of a session (GET /sessions/{id}, the token proving ownership). */
async function brokerView(session) {
  const response = await fetch(`${BROKER_URL}/sessions/${session.session_id}`, {
    headers: { "X-Session-Token": session.token },
  });
  assert.equal(response.status, 200);
  return response.json();
}

/** The simulated Avaturn session the web SDK fetched with this broker session's token. */
async function upstreamOf(session) {
  const fetched = await eventually("the web SDK's session fetch", async () => {
    const { sdk_fetches: fetches } = await control("GET", "/sdk-fetches");
    return fetches.find((f) => f.token === session.token && f.session_id);
  });
  return fetched.session_id;
}

/** Requests the page sends to the broker's end route (those of a page being closed are not seen). */
function endRequests(page) {
  const seen = [];
  page.on("request", (request) => {
    if (request.url().startsWith(`${BROKER_URL}/sessions/`) && request.url().endsWith("/end")) {
      seen.push({ url: request.url(), body: request.postData(), headers: request.headers(), type: request.resourceType() });
    }
  });
  return seen;
}

test("a reload mid-session ends the old session upstream, and Start succeeds at once", async () => {
  const page = await openDemo();
  const old = await (await startSession(page)).json();
  await state(page).and(page.locator("[data-state=connecting]")).waitFor();
  const upstream = await upstreamOf(old);
  const ends = endRequests(page);

  await page.reload();
  await page.locator("body[data-ready=true]").waitFor();

  // The page is ready only once the old session is over: at Avaturn and in the broker.
  const ended = await control("GET", `/sessions/${upstream}`);
  assert.equal(ended.status, "ended");
  assert.equal(ended.end_reason, "deleted");
  const view = await brokerView(old);
  assert.equal(view.status, "terminated");
  assert.equal(view.end_reason, "owner");
  assert.ok(ends.length >= 1, "the page called the end route");
  for (const sent of ends) {
    assert.equal(sent.url, `${BROKER_URL}/sessions/${old.session_id}/end`);
    assert.deepEqual(JSON.parse(sent.body), { token: old.token, reason: "page_closed" });
    assert.match(sent.headers["content-type"], /^text\/plain/);
  }
  await page.locator("#note").getByText("was ended").waitFor();
  assert.equal(await startButton(page).isEnabled(), true);

  // With a cap of one, the next session starts at once.
  const again = await startSession(page);
  assert.equal(again.status(), 201);
  await state(page).and(page.locator("[data-state=connecting]")).waitFor();
  await endButton(page).click();
  await state(page).and(page.locator("[data-state=ended]")).waitFor();
});

test("a session an earlier load left open (no beacon) is ended before Start is offered", async () => {
  // Given a session of this owner that the tab still holds, with no page alive to send a beacon
  const response = await fetch(`${BROKER_URL}/sessions`, {
    method: "POST",
    headers: { "content-type": "application/json", "Idempotency-Key": crypto.randomUUID() },
    body: "{}",
  });
  assert.equal(response.status, 201);
  const left = await response.json();
  const page = await openDemo();
  await page.evaluate(
    ([broker, session]) =>
      sessionStorage.setItem(
        "avaturn-broker-demo.session",
        JSON.stringify({ brokerUrl: broker, session_id: session.session_id, token: session.token }),
      ),
    [BROKER_URL, left],
  );
  const ends = endRequests(page);
  // When the tab loads the page again
  await page.reload();
  await page.locator("body[data-ready=true]").waitFor();
  // Then the leftover was ended through the end route, and Start gets the only slot
  assert.equal(ends.length, 1);
  assert.equal((await brokerView(left)).status, "terminated");
  assert.deepEqual((await control("GET", "/sessions")).active, []);
  assert.equal((await startSession(page)).status(), 201);
  await endButton(page).click();
  await state(page).and(page.locator("[data-state=ended]")).waitFor();
});

test("closing the page ends the session: the simulator records the end within 2 s", async () => {
  const page = await openDemo();
  const session = await (await startSession(page)).json();
  await state(page).and(page.locator("[data-state=connecting]")).waitFor();
  const upstream = await upstreamOf(session);

  const closed = Date.now();
  await page.close();
  const ended = await eventually("the end at Avaturn", async () => {
    const found = await control("GET", `/sessions/${upstream}`);
    return found.status === "ended" ? found : null;
  }, 2_000);
  const elapsed = Date.now() - closed;
  assert.ok(elapsed <= 2_000, `ended after ${elapsed} ms`);
  assert.equal(ended.end_reason, "deleted");
  const view = await brokerView(session);
  assert.equal(view.status, "terminated");
  assert.equal(view.end_reason, "owner");
});

test("the pagehide beacon is a CORS simple request: sendBeacon, POST, text/plain, the token in the body", async () => {
  const page = await openDemo();
  const session = await (await startSession(page)).json();
  await state(page).and(page.locator("[data-state=connecting]")).waitFor();
  const ends = endRequests(page);
  const answered = page.waitForResponse((r) => r.url().endsWith("/end"));
  // The event a closing page gets, while this one stays open to be watched
  await page.evaluate(() => dispatchEvent(new PageTransitionEvent("pagehide", { persisted: false })));
  assert.equal((await answered).status(), 204);
  assert.equal(ends.length, 1);
  const [beacon] = ends;
  assert.equal(beacon.type, "ping", "sent by navigator.sendBeacon");
  assert.equal(beacon.url, `${BROKER_URL}/sessions/${session.session_id}/end`);
  assert.match(beacon.headers["content-type"], /^text\/plain/);
  assert.equal(beacon.headers["x-session-token"], undefined, "no header that needs a preflight");
  assert.deepEqual(JSON.parse(beacon.body), { token: session.token, reason: "page_closed" });
  assert.equal((await brokerView(session)).status, "terminated");
  await state(page).and(page.locator("[data-state=ended]")).waitFor();
});

test("an SDK error ends the session with client_error and the SDK's error code", async () => {
  // Avaturn refuses the web SDK's session fetch, with its error code in the body
  await control("POST", "/faults", {
    endpoint: "avaturn.sdk",
    kind: "status",
    status: 429,
    body: { detail: "Too many concurrent sessions", code: "limits_exceeded" },
  });
  const page = await openDemo();
  const ends = endRequests(page);
  const reported = page.waitForResponse((r) => r.url().endsWith("/end") && r.request().method() === "POST");
  const session = await (await startSession(page)).json();
  assert.equal((await reported).status(), 204);
  assert.deepEqual(JSON.parse(ends[0].body), { token: session.token, reason: "client_error", error: "limits_exceeded" });

  const view = await brokerView(session);
  assert.equal(view.status, "terminated");
  assert.equal(view.end_reason, "client_error");
  assert.equal(view.client_error, "limits_exceeded");
  assert.deepEqual((await control("GET", "/sessions")).active, [], "ended at Avaturn too");
  await state(page).and(page.locator("[data-state=failed]")).waitFor();
  await page.getByRole("alert").getByText("Avaturn answered with an error (HTTP 429)").waitFor();
  await page.locator("#note").getByText("The session was ended.").waitFor();
  assert.equal(await startButton(page).isEnabled(), true, "Start can be tried again");
  assert.equal(await endButton(page).isDisabled(), true, "nothing left to end");
  await shot(page, "10-sdk-error-desktop");
  await assertAccessible(page, "after an SDK error");
});

test("the page renews the session's lease while it is open", async () => {
  const page = await openDemo();
  const leases = [];
  page.on("response", async (response) => {
    if (response.url().endsWith("/keepalive") && response.request().method() === "POST") {
      leases.push({ status: response.status(), body: await response.json() });
    }
  });
  const session = await (await startSession(page)).json();
  await state(page).and(page.locator("[data-state=connecting]")).waitFor();
  // A first renewal at once (it tells the page the lease), the next at a third of the lease
  await eventually("two renewals", async () => leases.length >= 2, 15_000);
  assert.deepEqual(leases.map((lease) => lease.status), leases.map(() => 200));
  const [first, second] = leases.map((lease) => Date.parse(lease.body.lease_expires_at));
  assert.ok(second > first, `the lease moved on (${leases[0].body.lease_expires_at} -> ${leases[1].body.lease_expires_at})`);
  assert.equal((await brokerView(session)).status, "active");
  await endButton(page).click();
  await state(page).and(page.locator("[data-state=ended]")).waitFor();
});
