// The socket a head or server listens on: plain HTTP, or TLS (with or without plain beside it on
// the same port). A TLS ClientHello starts with byte 0x16, which no HTTP request does, so the first
// byte of a connection tells which server handles it.
import type { Server as HttpServer } from "node:http";
import type { Server as HttpsServer } from "node:https";
import {
  createServer as createNetServer,
  type AddressInfo,
  type Server as NetServer,
  type Socket,
} from "node:net";
import { parseHostPort } from "./http-util.ts";
import { servingContext, type TlsMaterial, type TlsMode } from "./tls.ts";

const TLS_HANDSHAKE = 0x16;

const PLAIN_REFUSED =
  "HTTP/1.1 400 Bad Request\r\ncontent-type: application/json\r\nconnection: close\r\n\r\n" +
  JSON.stringify({ error: "tls_required", message: "this port speaks TLS only; use https://" });

export interface ListenerTls {
  readonly mode: Exclude<TlsMode, "disabled">;
  readonly material: TlsMaterial;
}

/** A listening socket and the HTTP server(s) behind it, closed together. */
export class ServingListener {
  /** Open connections, whichever server handles them. */
  readonly sockets = new Set<Socket>();
  readonly #front: NetServer;
  readonly #servers: readonly HttpServer[];

  /**
   * `plain` handles plain HTTP, `secure` TLS; without `tls` only `plain` is used (and listens itself).
   * With `tls`, `secure` serves the material's certificate, and takes a renewed one at once.
   */
  constructor(plain: HttpServer, secure: HttpsServer | undefined, tls: ListenerTls | undefined) {
    if (tls === undefined || secure === undefined) {
      this.#front = plain;
      this.#servers = [plain];
    } else {
      secure.setSecureContext(servingContext(tls.material.pem));
      tls.material.onChange((pem) => secure.setSecureContext(servingContext(pem)));
      const acceptPlain = tls.mode === "permissive";
      this.#servers = acceptPlain ? [plain, secure] : [secure];
      this.#front = createNetServer({ pauseOnConnect: true }, (socket) => {
        socket.once("readable", () => {
          const first = socket.read(1) as Buffer | null;
          if (first === null) {
            socket.destroy();
            return;
          }
          socket.unshift(first);
          if (first[0] === TLS_HANDSHAKE) secure.emit("connection", socket);
          else if (acceptPlain) plain.emit("connection", socket);
          else socket.end(PLAIN_REFUSED);
        });
      });
    }
    this.#front.on("connection", (socket: Socket) => {
      this.sockets.add(socket);
      socket.once("close", () => this.sockets.delete(socket));
    });
  }

  /** The server that accepts connections: the place for connection caps and per-connection timers. */
  get front(): NetServer {
    return this.#front;
  }

  /** Listens on `host:port` (port 0: any free one); resolves with the address bound. */
  async listen(listen: string): Promise<string> {
    const { host, port } = parseHostPort(listen);
    await new Promise<void>((resolve, reject) => {
      this.#front.once("error", reject);
      this.#front.listen(port, host, () => {
        this.#front.off("error", reject);
        resolve();
      });
    });
    return `${host}:${(this.#front.address() as AddressInfo).port}`;
  }

  /** Stops accepting; resolves once every connection has closed. */
  close(): Promise<void> {
    return new Promise((resolve) => this.#front.close(() => resolve()));
  }

  closeIdleConnections(): void {
    for (const server of this.#servers) server.closeIdleConnections();
  }

  closeAllConnections(): void {
    for (const server of this.#servers) server.closeAllConnections();
    for (const socket of this.sockets) socket.destroy();
  }
}
