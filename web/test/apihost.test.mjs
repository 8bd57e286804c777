// The session token goes only to an allow-listed Avaturn host, whatever ?apiHost= or the settings
// form say: the host of the served config.json, or the public Avaturn API.
import assert from "node:assert/strict";
import { test } from "node:test";
import { FriendlyError } from "../src/broker.js";
import { PUBLIC_AVATURN_API_HOST, trustedApiHost } from "../src/apihost.js";

const LOCAL = "http://172.17.0.1:4210"; // what a local stack's config.json names

test("the public Avaturn API and the configured host are trusted, as written or normalised", () => {
  assert.equal(PUBLIC_AVATURN_API_HOST, "https://api.avaturn.live");
  assert.equal(trustedApiHost("https://api.avaturn.live", LOCAL), "https://api.avaturn.live");
  assert.equal(trustedApiHost("https://API.Avaturn.live/", LOCAL), "https://api.avaturn.live");
  assert.equal(trustedApiHost("https://api.avaturn.live:443", undefined), "https://api.avaturn.live");
  assert.equal(trustedApiHost(LOCAL, LOCAL), LOCAL);
  assert.equal(trustedApiHost(`${LOCAL}/`, `${LOCAL}/`), LOCAL);
  assert.equal(trustedApiHost("https://avaturn.example.com/base/", "https://avaturn.example.com/base"), "https://avaturn.example.com/base");
});

test("any other host is refused with words a person can act on", () => {
  for (const candidate of [
    "https://evil.example",
    "https://api.avaturn.live.evil.example",
    "https://api.avaturn.live@evil.example",
    "https://user:pass@api.avaturn.live",
    "http://api.avaturn.live", // the public API over plain HTTP
    "https://api.avaturn.live:8443",
    "https://api.avaturn.live/other/path",
    "https://api.avaturn.live/?x=1",
    "https://api.avaturn.live/#x",
    "http://172.17.0.1:4211", // a neighbour of the configured host
    "javascript:alert(1)",
    "not a url",
    "",
  ]) {
    const error = (() => {
      try {
        trustedApiHost(candidate, LOCAL);
        return undefined;
      } catch (e) {
        return e;
      }
    })();
    assert.ok(error instanceof FriendlyError, `${candidate} was accepted`);
    assert.equal(error.kind, "untrusted-api-host");
    assert.match(error.message, /not a trusted Avaturn API host/);
  }
});

test("without a config.json only the public Avaturn API is trusted", () => {
  assert.throws(() => trustedApiHost(LOCAL, undefined), FriendlyError);
  assert.throws(() => trustedApiHost(LOCAL, "not a url"), FriendlyError);
  assert.equal(trustedApiHost("https://api.avaturn.live", "not a url"), "https://api.avaturn.live");
});
