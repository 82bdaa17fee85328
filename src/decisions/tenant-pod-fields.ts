// Which fields of a tenant's pod template the operator passes on, and which ones it refuses because
// they would lend the tenant a power the pool did not grant: the operator creates tenant pods with
// its own rights, so every field is either the tenant's to set, the pool's to allow, or the
// operator's own. A field not in the table is refused: a field added to PodSpec by a later
// Kubernetes release is not passed on until it has been judged here.
//
// Like pod-security.ts, the input is unknown-typed: it is whatever the tenant wrote.

export interface TenantPodPolicy {
  /** Service accounts besides "default" that tenant pods may run as. */
  serviceAccountNames: readonly string[];
  /** Whether tenant pods may mount their service account's token. */
  automountServiceAccountToken: boolean;
  priorityClassNames: readonly string[];
  runtimeClassNames: readonly string[];
  /** Tolerations a tenant may add, matched field by field (the pool's own are always added). */
  tolerations: readonly Record<string, unknown>[];
  /** Annotation keys a tenant may set: exact keys, or a prefix ending in "*". */
  annotations: readonly string[];
  hostAliases: boolean;
}

export const DEFAULT_TENANT_POD_POLICY: TenantPodPolicy = {
  serviceAccountNames: [],
  automountServiceAccountToken: false,
  priorityClassNames: [],
  runtimeClassNames: [],
  tolerations: [],
  annotations: [],
  hostAliases: false,
};

export interface TenantPodFieldViolation {
  /** The offending field, e.g. `spec.priorityClassName`. */
  path: string;
  message: string;
}

/** Who decides a PodSpec field of a tenant pod. */
export type FieldRule =
  | { kind: "tenant" } // passed on as written; the Pod Security and sizing checks still apply
  | { kind: "operator"; why: string } // set by the operator; the tenant may not set it
  | { kind: "pool"; allowed: (value: unknown, policy: TenantPodPolicy) => string | undefined };

const tenant: FieldRule = { kind: "tenant" };
const operator = (why: string): FieldRule => ({ kind: "operator", why });
const pool = (allowed: (value: unknown, policy: TenantPodPolicy) => string | undefined): FieldRule => ({
  kind: "pool",
  allowed,
});

const inList = (what: string, list: (p: TenantPodPolicy) => readonly string[]) =>
  pool((value, policy) =>
    typeof value === "string" && list(policy).includes(value)
      ? undefined
      : `${what} ${JSON.stringify(value)} is not allowed by the pool`,
  );

const serviceAccount = pool((value, policy) =>
  value === "default" || (typeof value === "string" && policy.serviceAccountNames.includes(value))
    ? undefined
    : `service account ${JSON.stringify(value)} is not allowed by the pool (only "default"${policy.serviceAccountNames.map((n) => `, "${n}"`).join("")})`,
);

/** Projected sources that hand the pod a credential of its service account. */
const CREDENTIAL_SOURCES = ["serviceAccountToken", "podCertificate"] as const;

/** The first volume that projects a service account credential, if any. */
function tokenVolume(volumes: unknown): { volume: unknown; source: string } | undefined {
  for (const volume of Array.isArray(volumes) ? volumes : []) {
    const sources = asObject(asObject(asObject(volume)?.projected))?.sources;
    for (const source of Array.isArray(sources) ? sources : []) {
      const found = CREDENTIAL_SOURCES.find((key) => asObject(source)?.[key] !== undefined);
      if (found) return { volume: asObject(volume)?.name, source: found };
    }
  }
  return undefined;
}

const sameToleration = (a: Record<string, unknown>, b: Record<string, unknown>) =>
  ["key", "operator", "value", "effect", "tolerationSeconds"].every((k) => (a[k] ?? null) === (b[k] ?? null));

/** The table: every PodSpec field of Kubernetes 1.36 (as @kubernetes/client-node knows it), and who decides it. */
export const TENANT_POD_SPEC_FIELDS: Readonly<Record<string, FieldRule>> = {
  containers: tenant,
  initContainers: tenant,
  volumes: pool((value, policy) => {
    if (policy.automountServiceAccountToken) return undefined;
    const token = tokenVolume(value);
    return token === undefined
      ? undefined
      : `volume ${JSON.stringify(token.volume)} projects a ${token.source}, and the pool allows no service account token`;
  }),
  securityContext: tenant,
  restartPolicy: tenant,
  terminationGracePeriodSeconds: tenant,
  activeDeadlineSeconds: tenant,
  dnsPolicy: tenant,
  dnsConfig: tenant,
  enableServiceLinks: tenant,
  hostname: tenant,
  subdomain: tenant,
  setHostnameAsFQDN: tenant,
  shareProcessNamespace: tenant,
  imagePullSecrets: tenant,
  readinessGates: tenant,
  os: tenant,
  hostUsers: tenant,
  resources: tenant, // pod-level; checked against the slot, then replaced by the slot's size
  // Host namespaces are refused by the restricted Pod Security checks, with their own message.
  hostNetwork: tenant,
  hostPID: tenant,
  hostIPC: tenant,
  serviceAccountName: serviceAccount,
  serviceAccount: serviceAccount,
  automountServiceAccountToken: pool((value, policy) =>
    value === false || policy.automountServiceAccountToken
      ? undefined
      : "mounting a service account token is not allowed by the pool",
  ),
  priorityClassName: inList("priority class", (p) => p.priorityClassNames),
  runtimeClassName: inList("runtime class", (p) => p.runtimeClassNames),
  tolerations: pool((value, policy) => {
    const list = Array.isArray(value) ? value : [value];
    const foreign = list.find(
      (t) =>
        typeof t !== "object" ||
        t === null ||
        !policy.tolerations.some((allowed) => sameToleration(allowed, t as Record<string, unknown>)),
    );
    return foreign === undefined
      ? undefined
      : `toleration ${JSON.stringify(foreign)} is not allowed by the pool`;
  }),
  hostAliases: pool((_value, policy) =>
    policy.hostAliases ? undefined : "hostAliases are not allowed by the pool",
  ),
  nodeName: operator("the operator pins the pod to its slot's node"),
  nodeSelector: operator("the operator pins the pod to its slot's node"),
  affinity: operator("the operator pins the pod to its slot's node"),
  topologySpreadConstraints: operator("the operator pins the pod to its slot's node"),
  schedulerName: operator("the operator pins the pod to its slot's node"),
  schedulingGates: operator("the operator pins the pod to its slot's node"),
  priority: operator("priority comes from priorityClassName"),
  preemptionPolicy: operator("preemption comes from priorityClassName"),
  overhead: operator("pod overhead comes from the runtime class"),
  resourceClaims: operator("a slot holds CPU and memory only, no devices"),
  hostnameOverride: operator("it is not judged safe for tenants yet"),
  schedulingGroup: operator("the operator pins the pod to its slot's node"),
  ephemeralContainers: operator("ephemeral containers are added to a running pod, not templated"),
};

/** Who decides a PodSpec field; undefined for a field nobody has judged (own keys only: "constructor" is not a field). */
export function tenantPodFieldRule(field: string): FieldRule | undefined {
  return Object.hasOwn(TENANT_POD_SPEC_FIELDS, field) ? TENANT_POD_SPEC_FIELDS[field] : undefined;
}

function annotationAllowed(key: string, allowed: readonly string[]): boolean {
  return allowed.some((pattern) =>
    pattern.endsWith("*") ? key.startsWith(pattern.slice(0, -1)) : key === pattern,
  );
}

/** AppArmor annotations are judged by the restricted Pod Security checks, like their field. */
const APPARMOR_ANNOTATION_PREFIX = "container.apparmor.security.beta.kubernetes.io/";

/**
 * The fields of a tenant's pod template that the pool does not let it set, in a stable order.
 * Empty means every field is the tenant's own or allowed by the pool.
 */
export function checkTenantPodFields(
  podSpec: unknown,
  podMetadata: unknown,
  policy: TenantPodPolicy,
): TenantPodFieldViolation[] {
  const found: TenantPodFieldViolation[] = [];
  const spec = asObject(podSpec) ?? {};
  for (const field of Object.keys(spec).sort()) {
    const value = spec[field];
    if (value === undefined || value === null) continue;
    const rule = tenantPodFieldRule(field);
    const path = `spec.${field}`;
    if (!rule) found.push({ path, message: `${path} is not a field tenants may set` });
    else if (rule.kind === "operator") found.push({ path, message: `${path} may not be set: ${rule.why}` });
    else if (rule.kind === "pool") {
      const why = rule.allowed(value, policy);
      if (why) found.push({ path, message: `${path}: ${why}` });
    }
  }
  const annotations = asObject(asObject(podMetadata)?.annotations) ?? {};
  for (const key of Object.keys(annotations).sort()) {
    if (key.startsWith(APPARMOR_ANNOTATION_PREFIX) || annotationAllowed(key, policy.annotations)) continue;
    found.push({
      path: `metadata.annotations[${JSON.stringify(key)}]`,
      message: `annotation ${key} is not allowed by the pool`,
    });
  }
  return found;
}

function asObject(value: unknown): Record<string, unknown> | undefined {
  return typeof value === "object" && value !== null && !Array.isArray(value)
    ? (value as Record<string, unknown>)
    : undefined;
}
