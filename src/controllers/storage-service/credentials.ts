// The secrets of a storage service's data plane, kept by the operator: the service's CA, the serving
// certificate its heads and servers mount (issued anew when a third of its life is left, or when it
// lacks a name), one bearer token per client listed in spec.authentication, and the digests of those
// tokens that the head mounts. Secrets are read only when something is due (memo on the context),
// and written only when their content must change.
import type * as k8s from "@kubernetes/client-node";
import { randomBytes } from "node:crypto";
import type { StorageService } from "../../api/index.ts";
import { tokenDigest } from "../../dataplane/client-auth.ts";
import { certificateAction, renewalTime } from "../../decisions/certificate-renewal.ts";
import { isConflict, isNotFound } from "../../kube/errors.ts";
import {
  certificateInfo,
  createCa,
  issueServing,
  signedBy,
  type KeyPairPem,
} from "../../pki/certificates.ts";
import type { ControllerContext } from "../context.ts";
import { labels } from "../labels.ts";
import { meta } from "./manifests.ts";
import {
  caSecretName,
  clientDigestsSecretName,
  clientSecretName,
  configKeys,
  servingDnsNames,
  tlsSecretName,
} from "./names.ts";

/** How often secrets are read again though nothing seems due (a Secret edited or deleted by hand). */
const RECHECK_MS = 600_000;
/** The CA outlives many serving certificates: ten years. */
const CA_VALIDITY_MS = 10 * 365 * 24 * 3600_000;
/** A certificate is valid from a little before it is issued, for clocks that disagree. */
const BACKDATE_MS = 5 * 60_000;
/** The label naming the client a token Secret belongs to. */
export const clientLabel = "understudy.dev/client";

const decode = (secret: k8s.V1Secret, key: string) => {
  const value = secret.data?.[key];
  return value === undefined ? undefined : Buffer.from(value, "base64").toString("utf8");
};
const encode = (data: Record<string, string>) =>
  Object.fromEntries(Object.entries(data).map(([k, v]) => [k, Buffer.from(v, "utf8").toString("base64")]));

async function readSecret(ctx: ControllerContext, namespace: string, name: string) {
  try {
    return await ctx.client.core.readNamespacedSecret({ name, namespace });
  } catch (err) {
    if (isNotFound(err)) return undefined;
    throw err;
  }
}

/** Creates the Secret, or replaces its data when it exists (at the version read, so a race fails). */
async function writeSecret(
  ctx: ControllerContext,
  body: k8s.V1Secret,
  existing: k8s.V1Secret | undefined,
): Promise<void> {
  const namespace = body.metadata!.namespace!;
  if (existing === undefined) {
    await ctx.client.core.createNamespacedSecret({ namespace, body });
    return;
  }
  await ctx.client.core.replaceNamespacedSecret({
    name: body.metadata!.name!,
    namespace,
    body: { ...body, metadata: { ...body.metadata, resourceVersion: existing.metadata?.resourceVersion } },
  });
}

/**
 * Whether the Secrets behind `key` must be looked at: what is wanted changed, or the time stored
 * with the memo (here the next check, not the last write) has come.
 */
function due(ctx: ControllerContext, key: string, hash: string): boolean {
  const last = ctx.writes.applied.get(key);
  return !last || last.hash !== hash || ctx.now() >= last.at;
}

/** The service's CA, made on first need; kept in a Secret no pod mounts. */
async function ensureCa(ctx: ControllerContext, service: StorageService): Promise<KeyPairPem> {
  const namespace = service.metadata.namespace!;
  const name = caSecretName(service.metadata.name!);
  const existing = await readSecret(ctx, namespace, name);
  const cert = existing && decode(existing, configKeys.caCert);
  const key = existing && decode(existing, configKeys.caKey);
  if (cert && key) return { cert, key };
  const now = ctx.now();
  const ca = await createCa(
    `understudy ${namespace}/${service.metadata.name} CA`,
    new Date(now - BACKDATE_MS),
    new Date(now + CA_VALIDITY_MS),
  );
  const body: k8s.V1Secret = {
    apiVersion: "v1",
    kind: "Secret",
    metadata: meta(service, name),
    type: "Opaque",
    data: encode({ [configKeys.caCert]: ca.cert, [configKeys.caKey]: ca.key }),
  };
  try {
    await writeSecret(ctx, body, existing);
  } catch (err) {
    // Another writer made one first: use theirs, so every certificate chains to one CA.
    if (isConflict(err)) return ensureCa(ctx, service);
    throw err;
  }
  return ca;
}

/**
 * The serving certificate: issued when missing, not from the CA, lacking a name, or in the last
 * third of its life. The Secret exists before any head pod that mounts it is created, since
 * ensureResources runs this first.
 */
export async function ensureServingCertificate(
  ctx: ControllerContext,
  service: StorageService,
): Promise<void> {
  if (service.spec.tls.mode === "Disabled") return;
  const names = servingDnsNames(service);
  const memo = `${service.metadata.uid}/Secret/${tlsSecretName(service.metadata.name!)}`;
  const wanted = `${names.join(",")}|${service.spec.tls.certificateValidityHours}`;
  if (!due(ctx, memo, wanted)) return;
  const namespace = service.metadata.namespace!;
  const ca = await ensureCa(ctx, service);
  const existing = await readSecret(ctx, namespace, tlsSecretName(service.metadata.name!));
  const cert = existing && decode(existing, configKeys.tlsCert);
  const observed = cert
    ? {
        ...certificateInfo(cert),
        signedByCa: decode(existing, configKeys.caCert) === ca.cert && (await signedBy(cert, ca.cert)),
      }
    : undefined;
  const now = new Date(ctx.now());
  const decision = certificateAction(observed, names, now);
  let renewAt: Date;
  if (decision.action === "keep") {
    renewAt = decision.renewAt;
  } else {
    const notBefore = new Date(now.getTime() - BACKDATE_MS);
    const notAfter = new Date(now.getTime() + service.spec.tls.certificateValidityHours * 3600_000);
    const serving = await issueServing(ca, {
      commonName: `${service.metadata.name}.${namespace}`,
      dnsNames: names,
      notBefore,
      notAfter,
    });
    await writeSecret(
      ctx,
      {
        apiVersion: "v1",
        kind: "Secret",
        metadata: meta(service, tlsSecretName(service.metadata.name!)),
        type: "kubernetes.io/tls",
        data: encode({
          [configKeys.caCert]: ca.cert,
          [configKeys.tlsCert]: serving.cert,
          [configKeys.tlsKey]: serving.key,
        }),
      },
      existing,
    );
    ctx.events.normal(service, "CertificateIssued", `serving certificate issued: ${decision.reason}`);
    renewAt = renewalTime(notBefore, notAfter);
  }
  // Checked again at the renewal time, or sooner so a Secret changed by hand is seen.
  ctx.writes.applied.set(memo, { hash: wanted, at: Math.min(renewAt.getTime(), ctx.now() + RECHECK_MS) });
}

/**
 * One token Secret per listed client (made once, never rewritten), the head's digests Secret, and
 * the Secrets of clients no longer listed deleted: revoking one client touches no other.
 */
export async function ensureClientCredentials(
  ctx: ControllerContext,
  service: StorageService,
): Promise<void> {
  if (service.spec.authentication.mode === "Disabled") return;
  const name = service.metadata.name!;
  const namespace = service.metadata.namespace!;
  const clients = service.spec.authentication.clients.map((c) => c.name).sort();
  const memo = `${service.metadata.uid}/Secret/${clientDigestsSecretName(name)}`;
  if (!due(ctx, memo, clients.join(","))) return;
  const digests: Record<string, string> = {};
  for (const client of clients) {
    const secretName = clientSecretName(name, client);
    let token = randomBytes(32).toString("hex");
    try {
      await ctx.client.core.createNamespacedSecret({
        namespace,
        body: {
          apiVersion: "v1",
          kind: "Secret",
          metadata: meta(service, secretName, { [clientLabel]: client }),
          type: "Opaque",
          data: encode({ [configKeys.token]: token }),
        },
      });
    } catch (err) {
      if (!isConflict(err)) throw err;
      const existing = await readSecret(ctx, namespace, secretName);
      token = (existing && decode(existing, configKeys.token)) ?? "";
      if (token === "")
        throw new Error(`secret ${namespace}/${secretName} has no key ${configKeys.token}`, { cause: err });
    }
    digests[client] = tokenDigest(token);
  }
  const digestsName = clientDigestsSecretName(name);
  const existing = await readSecret(ctx, namespace, digestsName);
  const text = JSON.stringify(digests);
  if (existing === undefined || decode(existing, configKeys.clientDigests) !== text) {
    await writeSecret(
      ctx,
      {
        apiVersion: "v1",
        kind: "Secret",
        metadata: meta(service, digestsName),
        type: "Opaque",
        data: encode({ [configKeys.clientDigests]: text }),
      },
      existing,
    );
  }
  // The head refuses a revoked token once its digests file changed; the token itself goes too.
  const issued = await ctx.client.core.listNamespacedSecret({
    namespace,
    labelSelector: `${labels.service}=${name},${clientLabel}`,
  });
  for (const secret of issued.items) {
    const client = secret.metadata?.labels?.[clientLabel];
    if (client === undefined || clients.includes(client)) continue;
    try {
      await ctx.client.core.deleteNamespacedSecret({ name: secret.metadata!.name!, namespace });
    } catch (err) {
      if (!isNotFound(err)) throw err;
    }
  }
  ctx.writes.applied.set(memo, { hash: clients.join(","), at: ctx.now() + RECHECK_MS });
}
