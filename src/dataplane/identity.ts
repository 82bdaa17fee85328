// Who answers at an address. Pod IPs are reused soon after their pod is deleted, and a head cut off
// from the API server keeps running on its node, so "something answered at the head's IP" does not
// mean "our head answered". Every head and server reply therefore names its StorageService (by
// UID), its pod, its role and, for a head, its epoch; every sender says whom it means to reach, and
// both sides refuse a mismatch. Without TLS this is a check of the answer, not a proof of identity.

export const ROLES = ["head", "server"] as const;
export type Role = (typeof ROLES)[number];

/** Response header naming the process that answered (also in /healthz and /readyz bodies). */
export const IDENTITY_HEADER = "understudy-identity";
/** Request header naming the process the sender means to reach; a process that is not it refuses. */
export const EXPECT_HEADER = "understudy-expect";
/** HTTP status of a request that reached another process than the one it was meant for. */
export const MISDIRECTED_STATUS = 421;

export interface Identity {
  /** The StorageService's metadata.uid; "" when the process was started without one. */
  readonly service: string;
  readonly role: Role;
  /** The pod's name; "" when unknown. */
  readonly pod: string;
  /** A head's epoch. */
  readonly epoch?: number;
}

/** What a caller knows of the process it means to reach; unset fields are not checked. */
export interface ExpectedIdentity {
  readonly service?: string;
  readonly role?: Role;
  readonly pod?: string;
  readonly epoch?: number;
}

const FIELDS = ["service", "role", "pod", "epoch"] as const;
const TOKEN = /^[A-Za-z0-9._-]*$/;

/** `service=<uid>; role=head; pod=<name>; epoch=7`, leaving out unset fields. */
export function formatIdentity(identity: ExpectedIdentity): string {
  return FIELDS.filter((f) => identity[f] !== undefined && identity[f] !== "")
    .map((f) => `${f}=${String(identity[f])}`)
    .join("; ");
}

/** The fields of a header written by formatIdentity; undefined when it is absent or malformed. */
function parseFields(text: string | null | undefined): Map<string, string> | undefined {
  if (text === null || text === undefined || text.length > 512) return undefined;
  const fields = new Map<string, string>();
  for (const part of text.split(";")) {
    const trimmed = part.trim();
    if (trimmed === "") continue;
    const eq = trimmed.indexOf("=");
    const name = trimmed.slice(0, eq);
    const value = trimmed.slice(eq + 1);
    if (eq <= 0 || !(FIELDS as readonly string[]).includes(name) || !TOKEN.test(value) || fields.has(name))
      return undefined;
    fields.set(name, value);
  }
  return fields;
}

function parseEpoch(text: string | undefined): number | undefined | null {
  if (text === undefined) return undefined;
  return /^\d{1,15}$/.test(text) ? Number(text) : null;
}

/** An answer's identity header; undefined when absent or malformed (such an answer is not trusted). */
export function parseIdentity(text: string | null | undefined): Identity | undefined {
  const fields = parseFields(text);
  const role = fields?.get("role");
  if (!fields || !(ROLES as readonly string[]).includes(role ?? "")) return undefined;
  const epoch = parseEpoch(fields.get("epoch"));
  if (epoch === null) return undefined;
  const identity = { service: fields.get("service") ?? "", role: role as Role, pod: fields.get("pod") ?? "" };
  return epoch === undefined ? identity : { ...identity, epoch };
}

/** A request's expectation header; undefined when absent, null when malformed. */
export function parseExpected(text: string | null | undefined): ExpectedIdentity | undefined | null {
  if (text === null || text === undefined) return undefined;
  const fields = parseFields(text);
  if (!fields) return null;
  const role = fields.get("role");
  if (role !== undefined && !(ROLES as readonly string[]).includes(role)) return null;
  const epoch = parseEpoch(fields.get("epoch"));
  if (epoch === null) return null;
  return {
    ...(fields.has("service") ? { service: fields.get("service")! } : {}),
    ...(role !== undefined ? { role: role as Role } : {}),
    ...(fields.has("pod") ? { pod: fields.get("pod")! } : {}),
    ...(epoch !== undefined ? { epoch } : {}),
  };
}

/** An identity from a /healthz or /readyz JSON body (`{service, role, pod, epoch?}`); undefined if absent. */
export function identityFromBody(body: unknown): Identity | undefined {
  if (body === null || typeof body !== "object") return undefined;
  const b = body as Record<string, unknown>;
  const fields: ExpectedIdentity = {
    ...(typeof b.service === "string" ? { service: b.service } : {}),
    ...(typeof b.role === "string" ? { role: b.role as Role } : {}),
    ...(typeof b.pod === "string" ? { pod: b.pod } : {}),
    ...(typeof b.epoch === "number" ? { epoch: b.epoch } : {}),
  };
  return parseIdentity(formatIdentity(fields));
}

/**
 * Why `actual` is not the process `expected` describes, or null when it is. A missing identity is a
 * mismatch: an answer that does not say who it is cannot be told apart from a stranger's.
 */
export function identityMismatch(expected: ExpectedIdentity, actual: Identity | undefined): string | null {
  if (actual === undefined) return "the answer names no understudy identity";
  const wrong: string[] = [];
  if (expected.role !== undefined && actual.role !== expected.role)
    wrong.push(`role ${actual.role}, not ${expected.role}`);
  if (expected.service !== undefined && expected.service !== "" && actual.service !== expected.service)
    wrong.push(`service ${actual.service || "(none)"}, not ${expected.service}`);
  if (expected.pod !== undefined && expected.pod !== "" && actual.pod !== expected.pod)
    wrong.push(`pod ${actual.pod || "(none)"}, not ${expected.pod}`);
  if (expected.epoch !== undefined && actual.epoch !== expected.epoch)
    wrong.push(`epoch ${actual.epoch ?? "(none)"}, not ${expected.epoch}`);
  return wrong.length === 0 ? null : `answered as ${wrong.join(", ")}`;
}
