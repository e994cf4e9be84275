// The playground: sign up or in, pick a conversation, chat with the answer streaming in and each
// tool call shown as it happens, the task list beside it. It uses the public API only, as any
// client would: /api/auth/*, the user's conversations and tasks, and the streamed chat turn
// (Server-Sent Events in the AI SDK's UI message stream protocol), read with fetch.

const SESSION_KEY = "todochat.playground.session";
const CONVERSATION_KEY = "todochat.playground.conversation";
const EXPIRED = "Your session has expired. Please sign in again.";
const CUT_OFF =
  "The connection was lost before the answer was complete. Send the message again to get it " +
  "(it will not be done twice), or reopen the conversation to see what was stored.";

const $ = (id) => document.getElementById(id);
const state = {
  session: null, // {token, user: {id, email, name}}
  conversationId: null,
  busy: false,
  pending: null, // {text, conversationId, key}: a message whose answer may not have arrived
  tasksTicket: 0,
};

class ApiError extends Error {
  constructor(status, detail, retryAfter = null) {
    super(detail);
    this.status = status;
    this.retryAfter = retryAfter;
  }
}

// --- DOM helpers -----------------------------------------------------------------------------

function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(attrs)) {
    if (name === "className") node.className = value;
    else node.setAttribute(name, value);
  }
  node.append(...children); // strings become text nodes: nothing is parsed as HTML
  return node;
}

function showNotice(text, kind = "error") {
  const notice = $("notice");
  notice.textContent = text;
  notice.dataset.kind = kind;
  notice.hidden = false;
}

function clearNotice() {
  $("notice").hidden = true;
  $("notice").textContent = "";
}

// Retry-After in words: "45 seconds", "3 minutes", "2 hours".
function seconds(n) {
  let [count, unit] = [n, "second"];
  if (n >= 5400) [count, unit] = [Math.ceil(n / 3600), "hour"];
  else if (n >= 90) [count, unit] = [Math.ceil(n / 60), "minute"];
  return count === 1 ? `1 ${unit}` : `${count} ${unit}s`;
}

// --- talking to the API --------------------------------------------------------------------------

function userPath(rest) {
  if (!state.session) throw new ApiError(401, EXPIRED); // signed out while a call was pending
  return `api/${encodeURIComponent(state.session.user.id)}${rest}`;
}

async function call(path, { method = "GET", body, headers = {}, auth = true } = {}) {
  const sent = { Accept: "application/json", ...headers };
  if (body !== undefined) sent["Content-Type"] = "application/json";
  if (auth) sent.Authorization = `Bearer ${state.session.token}`;
  let response;
  try {
    response = await fetch(path, {
      method,
      headers: sent,
      body: body === undefined ? undefined : JSON.stringify(body),
      credentials: "omit",
      cache: "no-store",
    });
  } catch {
    throw new ApiError(0, "The server cannot be reached. Check that it is running, then try again.");
  }
  if (!response.ok) throw await errorOf(response);
  return response;
}

async function errorOf(response) {
  let detail = "";
  try {
    const body = await response.json();
    if (typeof body.detail === "string") detail = body.detail;
  } catch {
    // not JSON: a proxy's page, say; the status says enough
  }
  const retry = Number.parseInt(response.headers.get("Retry-After") ?? "", 10);
  return new ApiError(
    response.status,
    detail || `The server answered ${response.status} ${response.statusText}`.trim(),
    Number.isFinite(retry) ? retry : null,
  );
}

// What a person should read for an error; `doing` is "signin", "signup", "chat" or "load".
function explain(error, doing) {
  const wait = error.retryAfter ? ` in ${seconds(error.retryAfter)}` : " in a moment";
  switch (error.status) {
    case 401:
      return doing === "signin" ? "Wrong email or password." : EXPIRED;
    case 429:
      return doing === "chat"
        ? `You are sending messages faster than allowed. Please try again${wait}.`
        : `Too many attempts. Please try again${wait}.`;
    case 503: // the detail already says to try again; Retry-After says when
      if (!error.retryAfter) return error.message;
      return `${error.message} (Retry after ${seconds(error.retryAfter)}.)`;
    default:
      return error.message;
  }
}

// A 401 on a signed-in call means the token expired or is no longer valid: sign in again.
function handle(error, doing) {
  if (error.status === 401 && doing !== "signin") {
    signOut();
    showNotice(EXPIRED);
    return;
  }
  showNotice(explain(error, doing));
}

// --- signing in ----------------------------------------------------------------------------------

function restoreSession() {
  try {
    state.session = JSON.parse(sessionStorage.getItem(SESSION_KEY) ?? "null");
    state.conversationId = JSON.parse(sessionStorage.getItem(CONVERSATION_KEY) ?? "null");
  } catch {
    state.session = null;
  }
  return Boolean(state.session?.token && state.session?.user?.id);
}

function rememberConversation(id) {
  state.conversationId = id;
  if (id === null) sessionStorage.removeItem(CONVERSATION_KEY);
  else sessionStorage.setItem(CONVERSATION_KEY, JSON.stringify(id));
}

async function authenticate(event) {
  event.preventDefault();
  const form = event.currentTarget;
  const action = event.submitter?.value === "signup" ? "signup" : "signin";
  const body = { email: form.email.value.trim(), password: form.password.value };
  const name = form.name.value.trim();
  if (action === "signup" && name) body.name = name;
  if (!body.email || !body.password) {
    showNotice("Enter your email and password.");
    return;
  }
  clearNotice();
  for (const button of form.querySelectorAll("button")) button.disabled = true;
  try {
    const response = await call(`api/auth/${action}`, { method: "POST", body, auth: false });
    const token = await response.json();
    state.session = { token: token.access_token, user: token.user };
    sessionStorage.setItem(SESSION_KEY, JSON.stringify(state.session));
    rememberConversation(null);
    form.password.value = "";
    await enter();
  } catch (error) {
    handle(error, action);
  } finally {
    for (const button of form.querySelectorAll("button")) button.disabled = false;
  }
}

function signOut() {
  const email = state.session?.user?.email ?? "";
  sessionStorage.removeItem(SESSION_KEY);
  rememberConversation(null);
  state.session = null;
  state.pending = null;
  $("workspace").hidden = true;
  $("who").hidden = true;
  $("auth").hidden = false;
  $("messages").replaceChildren();
  $("conversations").replaceChildren();
  $("tasks").replaceChildren();
  $("email").value = email;
  $("password").focus();
}

async function enter() {
  $("auth").hidden = true;
  $("workspace").hidden = false;
  $("who").hidden = false;
  $("who-email").textContent = state.session.user.email ?? state.session.user.id;
  try {
    await Promise.all([refreshConversations(), refreshTasks()]);
    if (state.conversationId !== null) {
      await openConversation(state.conversationId).catch((error) => {
        if (error.status !== 404) throw error;
        rememberConversation(null); // deleted since: start afresh
      });
    }
  } catch (error) {
    handle(error, "load");
    return;
  }
  $("message").focus();
}

// --- conversations and tasks -------------------------------------------------------------------

function itemsOf(body) {
  // A plain list, or a page of one ({items, next_cursor}).
  return Array.isArray(body) ? body : Array.isArray(body?.items) ? body.items : [];
}

async function refreshConversations() {
  const response = await call(userPath("/conversations?limit=50"));
  const conversations = itemsOf(await response.json());
  const list = $("conversations");
  list.replaceChildren(
    ...conversations.map((c) => {
      const when = new Date(c.updated_at);
      const button = el(
        "button",
        { type: "button", className: "conversation", "data-id": String(c.id) },
        `Conversation #${c.id}`,
        el("time", { datetime: c.updated_at }, when.toLocaleString()),
      );
      if (c.id === state.conversationId) button.setAttribute("aria-current", "true");
      return el("li", {}, button);
    }),
  );
  if (!conversations.length) list.append(el("li", { className: "empty" }, "No conversations yet."));
}

async function refreshTasks() {
  // Tool outputs can arrive close together: only the latest refresh may draw.
  const ticket = ++state.tasksTicket;
  const response = await call(userPath("/tasks"));
  const tasks = itemsOf(await response.json());
  if (ticket !== state.tasksTicket) return;
  const list = $("tasks");
  list.replaceChildren(
    ...tasks.map((t) =>
      el(
        "li",
        { className: t.completed ? "task done" : "task", "data-id": String(t.id) },
        el("span", { className: "mark", "aria-hidden": "true" }, t.completed ? "✓" : "○"),
        el("span", { className: "title" }, t.title),
        el("span", { className: "visually-hidden" }, t.completed ? " (completed)" : " (pending)"),
      ),
    ),
  );
  if (!tasks.length) list.append(el("li", { className: "empty" }, "No tasks yet. Ask the chat to add one."));
}

function refreshTasksQuietly() {
  refreshTasks().catch((error) => handle(error, "load"));
}

function markCurrent() {
  for (const button of $("conversations").querySelectorAll("button.conversation")) {
    if (Number(button.dataset.id) === state.conversationId) button.setAttribute("aria-current", "true");
    else button.removeAttribute("aria-current");
  }
}

async function openConversation(id) {
  const response = await call(userPath(`/conversations/${id}/messages`));
  const messages = itemsOf(await response.json());
  rememberConversation(id);
  markCurrent();
  $("messages").replaceChildren();
  for (const message of messages) {
    if (message.role === "user") {
      appendUserMessage(message.content);
      continue;
    }
    const reply = new Reply();
    for (const toolCall of message.tool_calls ?? []) {
      reply.toolInput(toolCall.id, toolCall.name, toolCall.arguments);
      reply.toolOutput(toolCall.id, toolCall.result);
    }
    reply.text("stored", message.content);
    reply.done();
  }
}

// --- the chat ------------------------------------------------------------------------------------

function appendUserMessage(text) {
  const who = el("span", { className: "who" }, "You");
  const item = el("li", { className: "message user" }, who, el("p", {}, text));
  $("messages").append(item);
  item.scrollIntoView({ block: "nearest" });
  return item;
}

// One assistant message, drawn part by part as the stream describes it.
class Reply {
  constructor() {
    this.parts = el("div", { className: "parts" });
    const who = el("span", { className: "who" }, "Assistant");
    this.item = el("li", { className: "message assistant", "aria-busy": "true" }, who, this.parts);
    this.texts = new Map();
    this.tools = new Map();
    $("messages").append(this.item);
  }

  text(id, delta) {
    let node = this.texts.get(id);
    if (!node) {
      node = document.createTextNode("");
      this.texts.set(id, node);
      this.parts.append(el("p", { className: "text" }, node));
    }
    node.appendData(delta);
    this.item.scrollIntoView({ block: "nearest" });
  }

  toolInput(id, name, input) {
    let tool = this.tools.get(id);
    if (!tool) {
      tool = {
        state: el("span", { className: "tool-state" }),
        input: el("code", { className: "tool-input" }),
        output: el("code", { className: "tool-output" }),
      };
      tool.node = el(
        "div",
        { className: "tool", "data-tool": name },
        el("span", { className: "tool-name" }, name),
        " ",
        tool.input,
        " ",
        tool.state,
        tool.output,
      );
      this.tools.set(id, tool);
      this.parts.append(tool.node);
    }
    tool.input.textContent = JSON.stringify(input ?? {});
    tool.node.dataset.state = "running";
    tool.state.textContent = "running…";
  }

  toolOutput(id, output, failed = false) {
    const tool = this.tools.get(id);
    if (!tool) return;
    tool.node.dataset.state = failed ? "failed" : "done";
    tool.state.textContent = failed ? "failed" : "done";
    tool.output.textContent = typeof output === "string" ? output : JSON.stringify(output);
  }

  fail(text) {
    this.parts.append(el("p", { className: "error" }, text));
  }

  done() {
    this.item.setAttribute("aria-busy", "false");
  }
}

// The Server-Sent Events of a response body, as the `data` of each event; comments are skipped.
async function* events(response) {
  const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
  let buffer = "";
  let data = [];
  for (;;) {
    const { value, done } = await reader.read();
    if (done) return;
    buffer += value;
    let end;
    while ((end = buffer.indexOf("\n")) !== -1) {
      const line = buffer.slice(0, end).replace(/\r$/, "");
      buffer = buffer.slice(end + 1);
      if (line === "") {
        if (data.length) yield data.join("\n");
        data = [];
      } else if (line.startsWith("data:")) {
        data.push(line.slice(line.startsWith("data: ") ? 6 : 5));
      } // ":" comments (keep-alives) and other fields are ignored
    }
  }
}

// Draws one streamed turn; returns true if it reached its end ([DONE] after "finish").
async function readStream(response, reply) {
  let finished = false;
  for await (const data of events(response)) {
    if (data === "[DONE]") return finished;
    const chunk = JSON.parse(data);
    switch (chunk.type) {
      case "start":
      case "finish": {
        const id = chunk.messageMetadata?.conversationId;
        if (id && id !== state.conversationId) {
          rememberConversation(id);
          refreshConversations().catch((error) => handle(error, "load"));
        }
        if (chunk.type === "finish") finished = true;
        break;
      }
      case "text-delta":
        reply.text(chunk.id, chunk.delta);
        break;
      case "tool-input-available":
        reply.toolInput(chunk.toolCallId, chunk.toolName, chunk.input);
        break;
      case "tool-output-available":
        reply.toolOutput(chunk.toolCallId, chunk.output);
        refreshTasksQuietly();
        break;
      case "tool-output-error":
        reply.toolOutput(chunk.toolCallId, chunk.errorText, true);
        refreshTasksQuietly();
        break;
      case "error":
        reply.fail(chunk.errorText);
        showNotice(chunk.errorText);
        finished = true; // the turn ended; the server said how
        break;
      default: // start-step, finish-step, text-start, text-end, …: nothing to draw
    }
  }
  return false;
}

// A JSON answer (a server that replays a turn as JSON): drawn the same way.
function drawJson(body, reply) {
  for (const toolCall of body.tool_calls ?? []) {
    reply.toolInput(toolCall.id, toolCall.name, toolCall.arguments);
    reply.toolOutput(toolCall.id, toolCall.result);
  }
  reply.text("json", body.response ?? "");
  if (body.conversation_id) rememberConversation(body.conversation_id);
  refreshTasksQuietly();
}

function idempotencyKey() {
  if (crypto.randomUUID) return crypto.randomUUID();
  const bytes = crypto.getRandomValues(new Uint8Array(16)); // randomUUID needs a secure context
  return Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
}

async function send(event) {
  event.preventDefault();
  const box = $("message");
  const text = box.value.trim();
  if (!text || state.busy) return;
  clearNotice();
  // The same message again after a lost answer reuses its key: the server replays, never redoes.
  const same = state.pending?.text === text && state.pending?.conversationId === state.conversationId;
  const pending = same
    ? state.pending
    : { text, conversationId: state.conversationId, key: idempotencyKey() };
  state.pending = pending;
  setBusy(true);
  box.value = "";
  const asked = appendUserMessage(text);
  const body = { message: text };
  if (state.conversationId !== null) body.conversation_id = state.conversationId;
  let response;
  try {
    response = await call(userPath("/chat/stream"), {
      method: "POST",
      body,
      headers: { Accept: "text/event-stream", "Idempotency-Key": pending.key },
    });
  } catch (error) {
    asked.remove();
    box.value = text; // nothing was said: the message is still there to send again
    // Unreachable (0) or still running (409): the turn may be under way; keep its key.
    if (error.status !== 0 && error.status !== 409) state.pending = null;
    handle(error, "chat");
    setBusy(false);
    return;
  }
  const reply = new Reply();
  try {
    let complete = true;
    if ((response.headers.get("Content-Type") ?? "").startsWith("text/event-stream")) {
      complete = await readStream(response, reply);
    } else {
      drawJson(await response.json(), reply);
    }
    if (complete) {
      state.pending = null;
    } else {
      reply.fail(CUT_OFF);
      box.value = text;
    }
  } catch {
    reply.fail(CUT_OFF);
    box.value = text;
  } finally {
    reply.done();
    setBusy(false);
    refreshConversations().catch((error) => handle(error, "load"));
  }
}

function setBusy(busy) {
  state.busy = busy;
  $("send").disabled = busy;
  $("send").textContent = busy ? "Answering…" : "Send";
  $("messages").setAttribute("aria-busy", String(busy));
}

// --- wiring --------------------------------------------------------------------------------------

$("auth-form").addEventListener("submit", authenticate);
$("composer").addEventListener("submit", send);
$("message").addEventListener("keydown", (event) => {
  // Enter sends, Shift+Enter makes a new line.
  if (event.key === "Enter" && !event.shiftKey && !event.isComposing) {
    event.preventDefault();
    $("composer").requestSubmit();
  }
});
$("sign-out").addEventListener("click", () => {
  signOut();
  showNotice("Signed out.", "info");
});
$("new-conversation").addEventListener("click", () => {
  if (state.busy) return;
  rememberConversation(null);
  markCurrent();
  $("messages").replaceChildren();
  $("message").focus();
});
$("conversations").addEventListener("click", (event) => {
  const button = event.target.closest("button.conversation");
  if (!button || state.busy) return;
  clearNotice();
  openConversation(Number(button.dataset.id)).catch((error) => handle(error, "load"));
});

if (restoreSession()) enter();
else $("email").focus();
