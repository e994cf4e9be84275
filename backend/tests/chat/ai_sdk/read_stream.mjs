// Reads one streamed chat turn with the AI SDK's own client code: the transport `useChat` uses
// (DefaultChatTransport, configured as the README shows) and readUIMessageStream, which
// validates every chunk against the package's schema and assembles the assistant message.
// Input (stdin, JSON): {api, token, message, conversationId?, idempotencyKey?}
// Output (stdout, JSON): {message: <the last UIMessage>, snapshots: <count>, error: <text or null>}
import { DefaultChatTransport, readUIMessageStream } from "ai";

const input = JSON.parse(await new Promise((resolve) => {
  let data = "";
  process.stdin.on("data", (c) => (data += c));
  process.stdin.on("end", () => resolve(data));
}));

const transport = new DefaultChatTransport({
  api: input.api,
  headers: {
    Authorization: `Bearer ${input.token}`,
    ...(input.idempotencyKey ? { "Idempotency-Key": input.idempotencyKey } : {}),
  },
  // This backend keeps the history: send only the new message and the conversation id.
  prepareSendMessagesRequest: ({ messages, body }) => ({
    body: {
      message: messages.at(-1).parts.filter((p) => p.type === "text").map((p) => p.text).join(""),
      ...(body?.conversationId ? { conversation_id: body.conversationId } : {}),
    },
  }),
});

let last = null;
let snapshots = 0;
try {
  const stream = await transport.sendMessages({
    chatId: "chat-1",
    trigger: "submit-message",
    messageId: undefined,
    messages: [{ id: "u1", role: "user", parts: [{ type: "text", text: input.message }] }],
    body: input.conversationId ? { conversationId: input.conversationId } : {},
    abortSignal: undefined,
  });
  // terminateOnError: an `error` chunk, or a chunk the schema refuses, ends the loop with it.
  for await (const message of readUIMessageStream({ stream, terminateOnError: true })) {
    last = message;
    snapshots += 1;
  }
  process.stdout.write(JSON.stringify({ message: last, snapshots, error: null }));
} catch (error) {
  process.stdout.write(JSON.stringify({ message: last, snapshots, error: String(error?.message ?? error) }));
}
