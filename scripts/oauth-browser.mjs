// Headless stand-in for the browser step of Switchboard's OAuth sign-in, for
// end-to-end tests and conformance runs: it follows the authorization
// server's redirects with a cookie jar, signs in with a local account on the
// sign-in page (whose "Sign in and allow" button is also the consent), allows
// on the consent page if one is shown, and stops at the first redirect that
// leaves the authorization server: the client's redirect URI, carrying code
// (or error), state and iss.
//
// As a module:  import { authorize } from "./oauth-browser.mjs";
//               const callback = await authorize(url, { username, password });
// As a command: SWITCHBOARD_USERNAME=alice SWITCHBOARD_PASSWORD=... \
//                 node scripts/oauth-browser.mjs [--deliver] AUTHORIZATION-URL
//   prints the client's redirect URL; --deliver also GETs it, handing the
//   code to a client's loopback callback server (the conformance suite's).
//   Exit status 1 if the sign-in fails.
//
// Needs Node 18 or later (fetch, Headers.getSetCookie); no packages.

import process from "node:process";
import { pathToFileURL } from "node:url";

const MAX_STEPS = 12;

class CookieJar {
  #cookies = new Map(); // name -> value; Switchboard sets host-only cookies with Path=/

  header() {
    return [...this.#cookies].map(([k, v]) => `${k}=${v}`).join("; ");
  }

  store(res) {
    for (const sc of res.headers.getSetCookie()) {
      const [pair, ...attrs] = sc.split(";");
      const eq = pair.indexOf("=");
      if (eq <= 0) continue;
      const name = pair.slice(0, eq).trim();
      const value = pair.slice(eq + 1).trim();
      const expired = attrs.some((a) => /^\s*max-age\s*=\s*(0|-\d+)\s*$/i.test(a));
      if (expired || value === "") this.#cookies.delete(name);
      else this.#cookies.set(name, value);
    }
  }
}

function unescapeHTML(s) {
  return s
    .replace(/&#(\d+);/g, (_, d) => String.fromCodePoint(Number(d)))
    .replace(/&#x([0-9a-f]+);/gi, (_, h) => String.fromCodePoint(parseInt(h, 16)))
    .replace(/&quot;/g, '"')
    .replace(/&#39;/g, "'")
    .replace(/&lt;/g, "<")
    .replace(/&gt;/g, ">")
    .replace(/&amp;/g, "&");
}

// forms returns each <form> of page: its method, action and hidden inputs.
function forms(page) {
  const out = [];
  for (const m of page.matchAll(/<form\b([^>]*)>([\s\S]*?)<\/form>/gi)) {
    const attr = (name, s) => {
      const a = new RegExp(`\\b${name}\\s*=\\s*"([^"]*)"`, "i").exec(s);
      return a ? unescapeHTML(a[1]) : "";
    };
    const hidden = {};
    for (const inp of m[2].matchAll(/<input\b([^>]*)>/gi)) {
      if (attr("type", inp[1]).toLowerCase() === "hidden") hidden[attr("name", inp[1])] = attr("value", inp[1]);
    }
    const buttons = [...m[2].matchAll(/<button\b([^>]*)>/gi)].map((b) => ({
      name: attr("name", b[1]),
      value: attr("value", b[1]),
    }));
    const fields = [...m[2].matchAll(/<input\b([^>]*)>/gi)].map((i) => attr("name", i[1]));
    out.push({ method: (attr("method", m[1]) || "get").toLowerCase(), action: attr("action", m[1]), hidden, buttons, fields });
  }
  return out;
}

// pageText is the visible text of an error page, for the failure message.
function pageText(page) {
  const main = /<main\b[^>]*>([\s\S]*?)<\/main>/i.exec(page)?.[1] ?? page;
  return unescapeHTML(main.replace(/<[^>]+>/g, " ")).replace(/\s+/g, " ").trim().slice(0, 400);
}

/**
 * authorize drives the browser step of an authorization request.
 *
 * @param {string} authorizationURL  the /authorize URL a client would open
 * @param {{username: string, password: string, fetch?: typeof fetch, log?: (msg: string) => void}} opts
 * @returns {Promise<string>} the client's redirect URL (with code or error, state and iss)
 */
export async function authorize(authorizationURL, { username, password, fetch: fetchFn = fetch, log = () => {} }) {
  const origin = new URL(authorizationURL).origin;
  const jar = new CookieJar();
  let req = { url: authorizationURL, method: "GET", body: undefined };
  for (let step = 0; step < MAX_STEPS; step++) {
    const headers = { accept: "text/html", "accept-language": "en" };
    const cookie = jar.header();
    if (cookie) headers.cookie = cookie;
    if (req.body) {
      headers["content-type"] = "application/x-www-form-urlencoded";
      headers.origin = origin;
    }
    log(`${req.method} ${req.url}`);
    const res = await fetchFn(req.url, { method: req.method, headers, body: req.body, redirect: "manual" });
    jar.store(res);
    if (res.status >= 300 && res.status < 400) {
      const loc = res.headers.get("location");
      if (!loc) throw new Error(`${req.method} ${req.url}: ${res.status} without Location`);
      const next = new URL(loc, req.url);
      if (next.origin !== origin) return next.toString(); // back at the client
      req = { url: next.toString(), method: "GET", body: undefined };
      continue;
    }
    const page = await res.text();
    if (res.status !== 200) {
      throw new Error(`${req.method} ${new URL(req.url).pathname}: HTTP ${res.status}: ${pageText(page)}`);
    }
    const fs = forms(page);
    const login = fs.find((f) => f.method === "post" && f.action === "/login" && f.fields.includes("password"));
    const consent = fs.find((f) => f.method === "post" && f.action === "/authorize/consent" && f.buttons.some((b) => b.value === "allow"));
    let form, fields;
    if (login) {
      form = login;
      fields = { ...login.hidden, username, password };
    } else if (consent) {
      form = consent;
      fields = { ...consent.hidden, action: "allow" };
    } else {
      throw new Error(`${req.method} ${new URL(req.url).pathname}: no sign-in or consent form on the page: ${pageText(page)}`);
    }
    req = { url: new URL(form.action, req.url).toString(), method: "POST", body: new URLSearchParams(fields).toString() };
  }
  throw new Error(`no redirect back to the client after ${MAX_STEPS} steps`);
}

async function main(argv) {
  const args = argv.slice(2);
  const deliver = args[0] === "--deliver";
  if (deliver) args.shift();
  if (args.length !== 1) {
    console.error("usage: SWITCHBOARD_USERNAME=... SWITCHBOARD_PASSWORD=... node oauth-browser.mjs [--deliver] AUTHORIZATION-URL");
    return 2;
  }
  const username = process.env.SWITCHBOARD_USERNAME;
  const password = process.env.SWITCHBOARD_PASSWORD;
  if (!username || !password) {
    console.error("oauth-browser: set SWITCHBOARD_USERNAME and SWITCHBOARD_PASSWORD");
    return 2;
  }
  const log = process.env.OAUTH_BROWSER_VERBOSE ? (m) => console.error(`[oauth-browser] ${m}`) : undefined;
  const callback = await authorize(args[0], { username, password, log });
  console.log(callback);
  const cb = new URL(callback);
  if (cb.searchParams.has("error")) {
    console.error(`oauth-browser: the authorization server answered ${cb.searchParams.get("error")}: ${cb.searchParams.get("error_description") ?? ""}`);
  }
  if (deliver) {
    // The client may start its callback listener just after printing the
    // URL: retry a refused connection for a few seconds.
    let res;
    for (let i = 0; ; i++) {
      try {
        res = await fetch(callback, { redirect: "manual" });
        break;
      } catch (err) {
        if (i >= 50 || err.cause?.code !== "ECONNREFUSED") throw err;
        await new Promise((r) => setTimeout(r, 100));
      }
    }
    await res.arrayBuffer();
    if (res.status >= 400) {
      console.error(`oauth-browser: the client's callback answered HTTP ${res.status}`);
      return 1;
    }
  }
  return cb.searchParams.has("code") ? 0 : 1;
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? "").href) {
  main(process.argv).then(
    (code) => process.exit(code),
    (err) => {
      console.error(`oauth-browser: ${err.message}`);
      process.exit(1);
    },
  );
}
