// Classifying HTTP failures: was the request never sent, or may it have been applied?

const CONNECT_FAILURES = new Set([
  "ECONNREFUSED",
  "ENOTFOUND",
  "EAI_AGAIN",
  "EHOSTUNREACH",
  "ENETUNREACH",
  "EADDRNOTAVAIL",
  "UND_ERR_CONNECT_TIMEOUT",
  // The peer's certificate was refused during the handshake, before any request byte was sent.
  "UNABLE_TO_VERIFY_LEAF_SIGNATURE",
  "UNABLE_TO_GET_ISSUER_CERT",
  "UNABLE_TO_GET_ISSUER_CERT_LOCALLY",
  "SELF_SIGNED_CERT_IN_CHAIN",
  "DEPTH_ZERO_SELF_SIGNED_CERT",
  "CERT_SIGNATURE_FAILURE",
  "CERT_HAS_EXPIRED",
  "CERT_NOT_YET_VALID",
  "ERR_TLS_CERT_ALTNAME_INVALID",
]);

function codesOf(err: unknown, depth = 0): string[] {
  if (err === null || typeof err !== "object" || depth > 5) return [];
  const e = err as { code?: unknown; cause?: unknown; errors?: unknown };
  const own = typeof e.code === "string" ? [e.code] : [];
  const nested = Array.isArray(e.errors) ? e.errors.flatMap((x) => codesOf(x, depth + 1)) : [];
  return [...own, ...codesOf(e.cause, depth + 1), ...nested];
}

/**
 * True when fetch failed while connecting, so the request never left this process:
 * nothing can have been applied and it is safe to send it again, elsewhere too.
 */
export function failedBeforeSending(err: unknown): boolean {
  const codes = codesOf(err);
  return codes.length > 0 && codes.every((c) => CONNECT_FAILURES.has(c));
}

export function describeError(err: unknown): string {
  const codes = codesOf(err);
  const message = err instanceof Error ? err.message : String(err);
  return codes.length > 0 ? `${message} (${codes.join(", ")})` : message;
}
