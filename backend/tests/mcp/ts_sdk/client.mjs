// The official TypeScript MCP SDK client against the served app, driven by
// tests/mcp/test_mcp_ts_sdk.py. Usage: node client.mjs <mcp-url> <scenario> [json-options]
//   bearer: connects with a bearer token, lists the tools and calls them (options.token).
//   oauth:  starts from the URL alone and follows the MCP authorization spec with the SDK's
//           own OAuth client: discovery, dynamic registration, the authorization-code flow with
//           PKCE (the sign-in page filled in over HTTP, as a browser would submit it), token
//           exchange, tool calls, then a refresh when the access token stops working.
// Prints one JSON object with what the client saw.
import { Client } from "@modelcontextprotocol/sdk/client/index.js";
import { StreamableHTTPClientTransport } from "@modelcontextprotocol/sdk/client/streamableHttp.js";
import { UnauthorizedError } from "@modelcontextprotocol/sdk/client/auth.js";

const [url, scenario, rawOptions] = process.argv.slice(2);
const options = JSON.parse(rawOptions ?? "{}");
const out = { calls: [] };

async function callAll(client) {
  const { tools } = await client.listTools();
  out.tools = tools;
  const call = async (name, args) => {
    const result = await client.callTool({ name, arguments: args });
    out.calls.push({ name, args, result });
    return result;
  };
  const added = await call("add_task", { title: options.title ?? "From TypeScript" });
  const id = added.structuredContent?.task_id;
  await call("list_tasks", { status: "pending" });
  await call("update_task", { task_id: id, description: "via the TS SDK" });
  await call("complete_task", { task_id: id });
  await call("complete_task", { task_id: 999999 });
  await call("add_task", { title: "x".repeat(10000) });
  await call("add_task", { title: "" });
  await call("delete_task", { task_id: 0 });
  return id;
}

class Provider {
  constructor() {
    this.saved = {};
    this.redirects = 0;
  }
  get redirectUrl() { return options.redirect_uri; }
  get clientMetadata() {
    return {
      client_name: "TS SDK test client",
      redirect_uris: [options.redirect_uri],
      grant_types: ["authorization_code", "refresh_token"],
      response_types: ["code"],
      token_endpoint_auth_method: options.auth_method ?? "client_secret_post",
    };
  }
  state() { return "state-" + Math.random().toString(36).slice(2); }
  clientInformation() { return this.saved.client; }
  saveClientInformation(info) { this.saved.client = info; out.client = info; }
  tokens() { return this.saved.tokens; }
  saveTokens(tokens) {
    this.saved.tokens = tokens;
    (out.tokens ??= []).push(tokens);
  }
  saveCodeVerifier(v) { this.saved.verifier = v; }
  codeVerifier() { return this.saved.verifier; }
  async redirectToAuthorization(authorizationUrl) {
    // What the user's browser does: follow /authorize to the sign-in page, submit it.
    this.redirects += 1;
    out.authorization_url = authorizationUrl.href;
    const start = await fetch(authorizationUrl, { redirect: "manual" });
    if (options.auto_approve) {
      // An outside issuer that approves at once (the test's stub): straight back with a code.
      const back = new URL(start.headers.get("location"));
      out.callback = back.href;
      this.code = back.searchParams.get("code");
      return;
    }
    const pageUrl = new URL(start.headers.get("location"), authorizationUrl);
    out.sign_in_url = pageUrl.href;
    const page = await fetch(pageUrl);
    out.sign_in_status = page.status;
    const html = await page.text();
    const request = html.match(/name="request" value="([^"]+)"/)[1];
    const form = new URLSearchParams({
      request, email: options.email, password: options.password, decision: "allow",
    });
    const answer = await fetch(new URL("/oauth/sign-in", pageUrl), {
      method: "POST", body: form, redirect: "manual",
    });
    const back = new URL(answer.headers.get("location"));
    out.callback = back.href;
    this.code = back.searchParams.get("code");
  }
}

async function oauth() {
  const provider = new Provider();
  let transport = new StreamableHTTPClientTransport(new URL(url), { authProvider: provider });
  let client = new Client({ name: "ts-oauth", version: "1.0.0" });
  try {
    await client.connect(transport);
    out.connected_without_login = true;
  } catch (error) {
    if (!(error instanceof UnauthorizedError)) throw error;
    await transport.finishAuth(provider.code);
    transport = new StreamableHTTPClientTransport(new URL(url), { authProvider: provider });
    client = new Client({ name: "ts-oauth", version: "1.0.0" });
    await client.connect(transport);
  }
  out.first_id = await callAll(client);
  // The access token stops working (revoked, expired): the SDK refreshes and retries.
  provider.saved.tokens = { ...provider.saved.tokens, access_token: "no-longer-valid" };
  const again = await client.callTool({ name: "list_tasks", arguments: { status: "all" } });
  out.after_refresh = again;
  out.redirects = provider.redirects;
  await client.close();
}

async function bearer() {
  const transport = new StreamableHTTPClientTransport(new URL(url), {
    requestInit: { headers: { Authorization: `Bearer ${options.token}` } },
  });
  const client = new Client({ name: "ts-bearer", version: "1.0.0" });
  await client.connect(transport);
  await callAll(client);
  await client.close();
}

try {
  await (scenario === "oauth" ? oauth() : bearer());
} catch (error) {
  out.error = String(error?.stack ?? error);
}
process.stdout.write(JSON.stringify(out));
