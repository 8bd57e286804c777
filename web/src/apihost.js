// Where the web SDK may send the session token. The token opens a paid avatar session, and the
// SDK sends it (X-Session-Token) to whatever apiHost it is given, so a link such as
// ?apiHost=https://attacker.example must not be able to collect it. No DOM here (node --test).
import { FriendlyError } from "./broker.js";

/** The public Avaturn API: always trusted. */
export const PUBLIC_AVATURN_API_HOST = "https://api.avaturn.live";

/**
 * `candidate` as the SDK's apiHost, if it is an allow-listed Avaturn host: the public Avaturn API,
 * or the host the page's own config.json names (`configured`; a local simulator, for instance).
 * Hosts compare as URLs: scheme, host and port (the default port may be written or not), and the
 * path without its trailing slash; no user info, query or fragment.
 * @param {string} candidate what the settings form, ?apiHost= or config.json say
 * @param {string | undefined} configured config.json's avaturnApiHost, if any
 * @returns {string} the normalised host, e.g. "https://api.avaturn.live"
 * @throws {FriendlyError} kind "untrusted-api-host" for anything else
 */
export function trustedApiHost(candidate, configured) {
  const host = normalised(candidate);
  const allowed = [PUBLIC_AVATURN_API_HOST, configured].map(normalised).filter(Boolean);
  if (host && allowed.includes(host)) return host;
  throw new FriendlyError(
    `${candidate || "(empty)"} is not a trusted Avaturn API host, so the session was not started. ` +
      `Use ${allowed.join(" or ")} (see Connection settings).`,
    { kind: "untrusted-api-host" },
  );
}

function normalised(value) {
  let url;
  try {
    url = new URL(String(value ?? ""));
  } catch {
    return undefined;
  }
  if (url.protocol !== "https:" && url.protocol !== "http:") return undefined;
  if (url.username || url.password || url.search || url.hash || value.includes("?") || value.includes("#")) return undefined;
  return url.origin + url.pathname.replace(/\/+$/, "");
}
