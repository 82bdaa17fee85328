// The dialer's exchange against real sockets: what its failures say about whether a request may
// have left this process, which decides between "not sent" (safe to send elsewhere) and "unknown".
import { createServer as createHttpServer, type Server } from "node:http";
import { createServer as createHttpsServer } from "node:https";
import { createServer as createNetServer, type AddressInfo, type Server as NetServer } from "node:net";
import { afterEach, describe, expect, it } from "vitest";
import { createCa, issueServing } from "../../../src/pki/certificates.ts";
import { Dialer, TlsMaterial } from "../../../src/dataplane/tls.ts";
import { failedBeforeSending } from "../../../src/dataplane/transport.ts";

const HOUR = 3600_000;
const validity = () => ({ notBefore: new Date(Date.now() - 60_000), notAfter: new Date(Date.now() + HOUR) });
const post = { method: "POST", headers: {}, body: "{}", timeoutMs: 5000, maxReplyBytes: 1024 } as const;

const servers: (Server | NetServer)[] = [];
const dialers: Dialer[] = [];
afterEach(async () => {
  await Promise.all(dialers.splice(0).map((d) => d.close()));
  for (const s of servers.splice(0)) s.close();
});

async function listening(server: Server | NetServer): Promise<string> {
  servers.push(server);
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  return `127.0.0.1:${(server.address() as AddressInfo).port}`;
}

function dialer(options: ConstructorParameters<typeof Dialer>[0] = {}): Dialer {
  const d = new Dialer(options);
  dialers.push(d);
  return d;
}

const failure = (p: Promise<unknown>) =>
  p.then(
    () => new Error("no failure"),
    (err: unknown) => err,
  );

describe("Dialer.exchange", () => {
  it("a refused connection is a failure before sending", async () => {
    const closed = createNetServer();
    const address = await listening(closed);
    await new Promise((r) => closed.close(r));
    const err = await failure(dialer().exchange(address, "/v1/apply", post));
    expect(failedBeforeSending(err)).toBe(true);
  });

  it("a connection dropped after the request was read is not a failure before sending", async () => {
    let received = "";
    const address = await listening(
      createNetServer((socket) =>
        socket.on("data", (chunk) => {
          received += chunk.toString();
          socket.destroy();
        }),
      ),
    );
    const err = await failure(dialer().exchange(address, "/v1/apply", post));
    expect(received).toContain("POST /v1/apply");
    expect(failedBeforeSending(err)).toBe(false);
    expect((err as { code?: string }).code).toBe("ERR_EXCHANGE_SENT");
  });

  it("an answer past maxReplyBytes is cut off, and a short one read whole with its headers", async () => {
    const address = await listening(
      createHttpServer((req, res) => {
        res.setHeader("x-who", "server-1");
        res.end(req.url === "/long" ? "x".repeat(4096) : "short");
      }),
    );
    const d = dialer();
    expect((await d.exchange(address, "/long", post)).text).toBeNull();
    const short = await d.exchange(address, "/short", post);
    expect(short).toMatchObject({ status: 200, text: "short" });
    expect(short.header("X-Who")).toBe("server-1");
  });

  it("over TLS, a peer whose certificate chains to another CA is refused before sending", async () => {
    const trusted = await createCa("trusted", validity().notBefore, validity().notAfter);
    const other = await createCa("other", validity().notBefore, validity().notAfter);
    const serving = await issueServing(other, {
      commonName: "kv",
      dnsNames: ["localhost"],
      ipAddresses: ["127.0.0.1"],
      ...validity(),
    });
    let requests = 0;
    const address = await listening(
      createHttpsServer({ cert: serving.cert, key: serving.key }, (_req, res) => {
        requests += 1;
        res.end("{}");
      }),
    );
    const err = await failure(
      dialer({ material: TlsMaterial.fromPem({ ca: trusted.cert }) }).exchange(address, "/v1/apply", post),
    );
    expect(failedBeforeSending(err)).toBe(true);
    expect(requests).toBe(0);
    // The same peer, trusted: served.
    const ok = await dialer({ material: TlsMaterial.fromPem({ ca: other.cert }) }).exchange(
      address,
      "/v1/apply",
      post,
    );
    expect(ok).toMatchObject({ status: 200, text: "{}" });
    expect(requests).toBe(1);
  });
});
