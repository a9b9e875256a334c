// An MCP client built on the TypeScript SDK (@modelcontextprotocol/sdk) that
// signs in to Switchboard the way a desktop client does, with its browser
// step done headless by ./oauth-browser.mjs. The end-to-end test in
// internal/e2e runs it against the real switchboard binary.
//
// Usage: SWITCHBOARD_USERNAME=... SWITCHBOARD_PASSWORD=... \
//        SWITCHBOARD_NODE_MODULES=<dir holding @modelcontextprotocol/sdk> \
//          node scripts/e2e-ts-client.mjs MCP-URL
//
// It connects to MCP-URL without credentials; the SDK discovers the
// authorization server from the 401 (RFC 9728), registers by DCR, starts an
// authorization code + PKCE request; the headless browser signs in and
// consents; transport.finishAuth(code) redeems the code. It then lists the
// tools, calls switchboard__get_current_time, refreshes the tokens with the
// SDK's auth(), calls the tool again with the new access token, and finally
// presents the first refresh token once more, which must now be refused
// (rotation; reuse revokes the family).
//
// Output: one JSON object on stdout (the test asserts it); progress on stderr.
// Exit status 0 when the steps ran (assertions are the test's), 1 otherwise.

import path from "node:path";
import process from "node:process";
import { pathToFileURL } from "node:url";

import { authorize } from "./oauth-browser.mjs";

const log = (m) => console.error(`[ts-client] ${m}`);

async function sdk(nodeModules, sub) {
  return import(pathToFileURL(path.join(nodeModules, "@modelcontextprotocol/sdk/dist/esm", sub)).href);
}

// A loopback redirect URI; nothing listens there: the headless browser stops
// at the redirect and hands the code over directly.
const REDIRECT = "http://127.0.0.1:33418/callback";

class Provider {
  constructor(browse) {
    this.browse = browse;
    this.info = undefined;
    this.saved = undefined;
    this.verifier = undefined;
    this.callback = undefined; // the redirect the browser step ended at
    this.expectedState = undefined;
  }
  get redirectUrl() {
    return REDIRECT;
  }
  get clientMetadata() {
    return {
      client_name: "Switchboard e2e (TypeScript SDK)",
      redirect_uris: [REDIRECT],
      grant_types: ["authorization_code", "refresh_token"],
      response_types: ["code"],
      token_endpoint_auth_method: "none",
    };
  }
  state() {
    this.expectedState = `st-${Math.random().toString(36).slice(2)}`;
    return this.expectedState;
  }
  clientInformation() {
    return this.info;
  }
  saveClientInformation(info) {
    this.info = info;
  }
  tokens() {
    return this.saved;
  }
  saveTokens(tokens) {
    this.saved = tokens;
  }
  saveCodeVerifier(v) {
    this.verifier = v;
  }
  codeVerifier() {
    return this.verifier;
  }
  async redirectToAuthorization(url) {
    log(`browser step: ${url.origin}${url.pathname}`);
    this.authorizationURL = url.toString();
    this.callback = await this.browse(url.toString());
  }
}

async function main() {
  const [mcpURL] = process.argv.slice(2);
  const { SWITCHBOARD_USERNAME: username, SWITCHBOARD_PASSWORD: password, SWITCHBOARD_NODE_MODULES: nm } = process.env;
  if (!mcpURL || !username || !password || !nm) {
    console.error("usage: SWITCHBOARD_USERNAME=... SWITCHBOARD_PASSWORD=... SWITCHBOARD_NODE_MODULES=... node e2e-ts-client.mjs MCP-URL");
    process.exit(2);
  }
  const { Client } = await sdk(nm, "client/index.js");
  const { StreamableHTTPClientTransport } = await sdk(nm, "client/streamableHttp.js");
  const { auth, UnauthorizedError } = await sdk(nm, "client/auth.js");
  const sdkVersion = (await import(pathToFileURL(path.join(nm, "@modelcontextprotocol/sdk/package.json")).href, { with: { type: "json" } })).default.version;

  const out = { sdkVersion };
  const provider = new Provider((u) => authorize(u, { username, password }));
  const url = new URL(mcpURL);

  // 1. Unauthenticated connect: 401 → discovery, DCR, authorization request.
  let transport = new StreamableHTTPClientTransport(url, { authProvider: provider });
  let client = new Client({ name: "switchboard-e2e-ts", version: "1.0.0" });
  try {
    await client.connect(transport);
    throw new Error("connect succeeded without signing in");
  } catch (err) {
    if (!(err instanceof UnauthorizedError)) throw err;
  }
  const cb = new URL(provider.callback);
  out.clientId = provider.info?.client_id;
  out.authorizationURL = provider.authorizationURL;
  out.callback = {
    origin: cb.origin + cb.pathname,
    hasCode: cb.searchParams.has("code"),
    error: cb.searchParams.get("error"),
    iss: cb.searchParams.get("iss"),
    stateMatches: cb.searchParams.get("state") === provider.expectedState,
  };
  const code = cb.searchParams.get("code");
  if (!code) throw new Error(`no code in the redirect: ${provider.callback}`);
  await transport.finishAuth(code);
  out.tokenType = provider.saved?.token_type;
  out.hasRefreshToken = typeof provider.saved?.refresh_token === "string";
  out.expiresIn = provider.saved?.expires_in;
  const first = provider.saved;

  // 2. Connect with the token, list and call tools.
  transport = new StreamableHTTPClientTransport(url, { authProvider: provider });
  client = new Client({ name: "switchboard-e2e-ts", version: "1.0.0" });
  await client.connect(transport);
  out.server = client.getServerVersion();
  out.sessionId = transport.sessionId ?? null;
  const { tools } = await client.listTools();
  out.tools = tools.map((t) => t.name).sort();
  const call = async () => {
    const r = await client.callTool({ name: "switchboard__get_current_time", arguments: { timezone: "UTC" } });
    return { isError: r.isError ?? false, structured: r.structuredContent ?? null };
  };
  out.call = await call();

  // 3. Refresh: the SDK's auth() uses the stored refresh token.
  const refreshed = await auth(provider, { serverUrl: url });
  out.refresh = {
    result: refreshed,
    accessTokenChanged: provider.saved?.access_token !== first.access_token,
    refreshTokenRotated: !!provider.saved?.refresh_token && provider.saved.refresh_token !== first.refresh_token,
  };
  out.callAfterRefresh = await call(); // the transport reads tokens() per request

  // 4. The spent refresh token is refused; reuse revokes the family.
  const meta = await (await fetch(new URL("/.well-known/oauth-authorization-server", url))).json();
  const res = await fetch(meta.token_endpoint, {
    method: "POST",
    headers: { "content-type": "application/x-www-form-urlencoded" },
    body: new URLSearchParams({ grant_type: "refresh_token", refresh_token: first.refresh_token, client_id: out.clientId }),
  });
  out.reusedRefresh = { status: res.status, error: (await res.json().catch(() => ({}))).error ?? null };
  const after = await fetch(url, {
    method: "POST",
    headers: {
      authorization: `Bearer ${provider.saved.access_token}`,
      "content-type": "application/json",
      accept: "application/json, text/event-stream",
      ...(transport.sessionId ? { "mcp-session-id": transport.sessionId } : {}),
    },
    body: JSON.stringify({ jsonrpc: "2.0", id: 99, method: "tools/list", params: {} }),
  });
  await after.arrayBuffer();
  out.afterReuseStatus = after.status;

  await client.close().catch(() => {});
  console.log(JSON.stringify(out));
}

main().catch((err) => {
  console.error(`[ts-client] ${err.stack ?? err}`);
  process.exit(1);
});
