// When the operator issues a storage service's serving certificate anew. Pure.

/** What the operator reads of the certificate in the service's TLS Secret. */
export interface ObservedCertificate {
  readonly notBefore: Date;
  readonly notAfter: Date;
  readonly dnsNames: readonly string[];
  /** Whether it chains to the service's CA (a Secret edited by hand, or a CA replaced, does not). */
  readonly signedByCa: boolean;
}

export type CertificateAction =
  { readonly action: "keep"; readonly renewAt: Date } | { readonly action: "issue"; readonly reason: string };

/** The share of a certificate's lifetime left when it is renewed: a third, as cert-manager does. */
export const RENEW_WHEN_LEFT = 1 / 3;

/** The moment a certificate valid from `notBefore` to `notAfter` is renewed. */
export function renewalTime(notBefore: Date, notAfter: Date): Date {
  const lifetime = notAfter.getTime() - notBefore.getTime();
  return new Date(notAfter.getTime() - lifetime * RENEW_WHEN_LEFT);
}

/**
 * Keep the certificate, or issue a new one: none yet, not from this service's CA, missing a name
 * the service needs (a zone's servers scaled up), or within the last third of its life.
 */
export function certificateAction(
  current: ObservedCertificate | undefined,
  wantedNames: readonly string[],
  now: Date,
): CertificateAction {
  if (current === undefined) return { action: "issue", reason: "no serving certificate yet" };
  if (!current.signedByCa) return { action: "issue", reason: "the certificate is not from the service's CA" };
  const missing = wantedNames.filter((n) => !current.dnsNames.includes(n));
  if (missing.length > 0)
    return { action: "issue", reason: `the certificate does not name ${missing.join(", ")}` };
  const renewAt = renewalTime(current.notBefore, current.notAfter);
  if (now.getTime() >= renewAt.getTime())
    return { action: "issue", reason: `renewal due since ${renewAt.toISOString()}` };
  return { action: "keep", renewAt };
}
