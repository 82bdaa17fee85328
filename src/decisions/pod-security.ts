// The restricted Pod Security Standard, checked on a tenant's raw pod template before the operator
// runs it on contingency capacity. It mirrors the checks of k8s.io/pod-security-admission at the
// restricted level (which includes baseline) for Linux pods, Kubernetes 1.36, plus the two checks
// announced for later releases (container ulimits, writable cgroups): fields that an older API
// server drops anyway.
//
// The input is unknown-typed on purpose: a claim's template is whatever the tenant wrote, so every
// field is read defensively and a wrong type is treated like the value it cannot be proven not to be.

export const PodSecurityCheck = {
  HostProcess: "hostProcess",
  HostNamespaces: "hostNamespaces",
  Privileged: "privileged",
  Capabilities: "capabilities",
  HostPorts: "hostPorts",
  HostProbesAndLifecycle: "hostProbesAndLifecycle",
  AppArmor: "appArmorProfile",
  SELinux: "seLinuxOptions",
  ProcMount: "procMount",
  Seccomp: "seccompProfile",
  Sysctls: "sysctls",
  Ulimits: "ulimits",
  VolumeTypes: "restrictedVolumes",
  AllowPrivilegeEscalation: "allowPrivilegeEscalation",
  RunAsNonRoot: "runAsNonRoot",
  RunAsUser: "runAsUser",
  CgroupOptions: "cgroupOptions",
} as const;
export type PodSecurityCheck = (typeof PodSecurityCheck)[keyof typeof PodSecurityCheck];

export interface PodSecurityViolation {
  check: PodSecurityCheck;
  /** The offending field, e.g. `spec.containers[0].securityContext.privileged`. */
  path: string;
  message: string;
}

/** Sysctls the kubelet treats as safe (namespaced and isolated), as of Kubernetes 1.32+. */
const SAFE_SYSCTLS: ReadonlySet<string> = new Set([
  "kernel.shm_rmid_forced",
  "net.ipv4.ip_local_port_range",
  "net.ipv4.ip_unprivileged_port_start",
  "net.ipv4.tcp_syncookies",
  "net.ipv4.ping_group_range",
  "net.ipv4.ip_local_reserved_ports",
  "net.ipv4.tcp_keepalive_time",
  "net.ipv4.tcp_fin_timeout",
  "net.ipv4.tcp_keepalive_intvl",
  "net.ipv4.tcp_keepalive_probes",
  "net.ipv4.tcp_rmem",
  "net.ipv4.tcp_wmem",
]);

/** Inline volume sources the restricted profile allows (`image` since Kubernetes 1.33). */
const RESTRICTED_VOLUME_SOURCES: ReadonlySet<string> = new Set([
  "configMap",
  "csi",
  "downwardAPI",
  "emptyDir",
  "ephemeral",
  "image",
  "persistentVolumeClaim",
  "projected",
  "secret",
]);

const ALLOWED_SELINUX_TYPES = new Set([
  "",
  "container_t",
  "container_init_t",
  "container_kvm_t",
  "container_engine_t",
]);
const ALLOWED_PROFILE_TYPES = new Set(["RuntimeDefault", "Localhost"]);
const APPARMOR_ANNOTATION_PREFIX = "container.apparmor.security.beta.kubernetes.io/";

type Obj = Record<string, unknown>;

function asObject(value: unknown): Obj | undefined {
  return typeof value === "object" && value !== null && !Array.isArray(value) ? (value as Obj) : undefined;
}

function asArray(value: unknown): unknown[] {
  return Array.isArray(value) ? value : [];
}

function isSet(value: unknown): boolean {
  return value !== undefined && value !== null;
}

interface ContainerAt {
  path: string;
  label: string;
  container: Obj;
  securityContext: Obj | undefined;
}

function containersOf(spec: Obj): ContainerAt[] {
  const out: ContainerAt[] = [];
  for (const list of ["initContainers", "containers", "ephemeralContainers"] as const) {
    asArray(spec[list]).forEach((item, index) => {
      const container = asObject(item) ?? {};
      const name = typeof container.name === "string" ? container.name : `#${index}`;
      out.push({
        path: `spec.${list}[${index}]`,
        label: `${list === "containers" ? "container" : list.slice(0, -1)} "${name}"`,
        container,
        securityContext: asObject(container.securityContext),
      });
    });
  }
  return out;
}

/** What every check reads: the pod spec, its security context, its containers of every kind. */
interface PodUnderCheck {
  spec: Obj;
  podSC: Obj | undefined;
  containers: ContainerAt[];
  podMetadata: unknown;
}

/** One check of the profile: it reports each violation it finds by its field and message. */
type Check = (pod: PodUnderCheck, add: (path: string, message: string) => void) => void;

/** The checks of the restricted profile, in the order their violations are reported. */
const CHECKS: readonly (readonly [PodSecurityCheck, Check])[] = [
  // HostProcess
  [
    PodSecurityCheck.HostProcess,
    ({ podSC, containers }, add) => {
      if (asObject(podSC?.windowsOptions)?.hostProcess === true) {
        add("spec.securityContext.windowsOptions.hostProcess", "pod must not run as a Windows HostProcess");
      }
      for (const c of containers) {
        if (asObject(c.securityContext?.windowsOptions)?.hostProcess === true) {
          add(
            `${c.path}.securityContext.windowsOptions.hostProcess`,
            `${c.label} must not run as a Windows HostProcess`,
          );
        }
      }
    },
  ],
  // Host namespaces
  [
    PodSecurityCheck.HostNamespaces,
    ({ spec }, add) => {
      for (const field of ["hostNetwork", "hostPID", "hostIPC"] as const) {
        if (spec[field] === true) add(`spec.${field}`, `pod must not set ${field}=true`);
      }
    },
  ],
  // Privileged containers
  [
    PodSecurityCheck.Privileged,
    ({ containers }, add) => {
      for (const c of containers) {
        if (c.securityContext?.privileged === true) {
          add(`${c.path}.securityContext.privileged`, `${c.label} must not be privileged`);
        }
      }
    },
  ],
  // Capabilities: drop ALL, add back at most NET_BIND_SERVICE
  [
    PodSecurityCheck.Capabilities,
    ({ containers }, add) => {
      for (const c of containers) {
        const capabilities = asObject(c.securityContext?.capabilities);
        const added = asArray(capabilities?.add).filter((cap) => cap !== "NET_BIND_SERVICE");
        if (added.length > 0) {
          add(
            `${c.path}.securityContext.capabilities.add`,
            `${c.label} must not add capabilities ${added.map((cap) => JSON.stringify(cap)).join(", ")} (only NET_BIND_SERVICE)`,
          );
        }
        if (!asArray(capabilities?.drop).includes("ALL")) {
          add(
            `${c.path}.securityContext.capabilities.drop`,
            `${c.label} must set securityContext.capabilities.drop=["ALL"]`,
          );
        }
      }
    },
  ],
  // Host ports
  [
    PodSecurityCheck.HostPorts,
    ({ containers }, add) => {
      for (const c of containers) {
        asArray(c.container.ports).forEach((port, index) => {
          const hostPort = asObject(port)?.hostPort;
          if (isSet(hostPort) && hostPort !== 0) {
            add(`${c.path}.ports[${index}].hostPort`, `${c.label} must not use hostPort ${String(hostPort)}`);
          }
        });
      }
    },
  ],
  // Host in probes and lifecycle handlers
  [
    PodSecurityCheck.HostProbesAndLifecycle,
    ({ containers }, add) => {
      for (const c of containers) {
        const handlers: [string, unknown][] = [
          ["livenessProbe", c.container.livenessProbe],
          ["readinessProbe", c.container.readinessProbe],
          ["startupProbe", c.container.startupProbe],
          ["lifecycle.postStart", asObject(c.container.lifecycle)?.postStart],
          ["lifecycle.preStop", asObject(c.container.lifecycle)?.preStop],
        ];
        for (const [where, handler] of handlers) {
          for (const kind of ["httpGet", "tcpSocket"] as const) {
            const host = asObject(asObject(handler)?.[kind])?.host;
            if (isSet(host) && host !== "") {
              add(`${c.path}.${where}.${kind}.host`, `${c.label} must not set ${where}.${kind}.host`);
            }
          }
        }
      }
    },
  ],
  // AppArmor: fields and the older annotations
  [
    PodSecurityCheck.AppArmor,
    ({ podSC, containers, podMetadata }, add) => {
      const appArmorType = (sc: Obj | undefined): unknown => asObject(sc?.appArmorProfile)?.type;
      if (
        podSC &&
        isSet(podSC.appArmorProfile) &&
        !ALLOWED_PROFILE_TYPES.has(appArmorType(podSC) as string)
      ) {
        add(
          "spec.securityContext.appArmorProfile.type",
          `pod must not set AppArmor profile type ${JSON.stringify(appArmorType(podSC))}`,
        );
      }
      for (const c of containers) {
        if (
          isSet(c.securityContext?.appArmorProfile) &&
          !ALLOWED_PROFILE_TYPES.has(appArmorType(c.securityContext) as string)
        ) {
          add(
            `${c.path}.securityContext.appArmorProfile.type`,
            `${c.label} must not set AppArmor profile type ${JSON.stringify(appArmorType(c.securityContext))}`,
          );
        }
      }
      const annotations = asObject(asObject(podMetadata)?.annotations) ?? {};
      for (const key of Object.keys(annotations).sort()) {
        if (!key.startsWith(APPARMOR_ANNOTATION_PREFIX)) continue;
        const value = annotations[key];
        const allowed =
          value === "" ||
          value === "runtime/default" ||
          (typeof value === "string" && value.startsWith("localhost/"));
        if (!allowed) {
          add(
            `metadata.annotations[${JSON.stringify(key)}]`,
            `annotation ${key} must not be ${JSON.stringify(value)}`,
          );
        }
      }
    },
  ],
  // SELinux
  [
    PodSecurityCheck.SELinux,
    ({ podSC, containers }, add) => {
      const seLinuxProblems = (sc: Obj | undefined): string[] => {
        const options = asObject(sc?.seLinuxOptions);
        if (!options) return [];
        const problems: string[] = [];
        const type = options.type ?? "";
        if (!ALLOWED_SELINUX_TYPES.has(type as string)) problems.push(`type ${JSON.stringify(type)}`);
        if (isSet(options.user) && options.user !== "") problems.push("user");
        if (isSet(options.role) && options.role !== "") problems.push("role");
        return problems;
      };
      const podSELinux = seLinuxProblems(podSC);
      if (podSELinux.length > 0) {
        add(
          "spec.securityContext.seLinuxOptions",
          `pod must not set seLinuxOptions ${podSELinux.join(", ")}`,
        );
      }
      for (const c of containers) {
        const problems = seLinuxProblems(c.securityContext);
        if (problems.length > 0) {
          add(
            `${c.path}.securityContext.seLinuxOptions`,
            `${c.label} must not set seLinuxOptions ${problems.join(", ")}`,
          );
        }
      }
    },
  ],
  // /proc mount type
  [
    PodSecurityCheck.ProcMount,
    ({ containers }, add) => {
      for (const c of containers) {
        const procMount = c.securityContext?.procMount;
        if (isSet(procMount) && procMount !== "Default") {
          add(
            `${c.path}.securityContext.procMount`,
            `${c.label} must not set procMount ${JSON.stringify(procMount)}`,
          );
        }
      }
    },
  ],
  // Seccomp: RuntimeDefault or Localhost, on the pod or on every container
  [
    PodSecurityCheck.Seccomp,
    ({ podSC, containers }, add) => {
      const seccompType = (sc: Obj | undefined): unknown => asObject(sc?.seccompProfile)?.type;
      let podSeccompSet = false;
      if (podSC && isSet(podSC.seccompProfile)) {
        if (ALLOWED_PROFILE_TYPES.has(seccompType(podSC) as string)) podSeccompSet = true;
        else
          add(
            "spec.securityContext.seccompProfile.type",
            `pod must not set seccompProfile type ${JSON.stringify(seccompType(podSC))}`,
          );
      }
      for (const c of containers) {
        if (isSet(c.securityContext?.seccompProfile)) {
          if (!ALLOWED_PROFILE_TYPES.has(seccompType(c.securityContext) as string)) {
            add(
              `${c.path}.securityContext.seccompProfile.type`,
              `${c.label} must not set seccompProfile type ${JSON.stringify(seccompType(c.securityContext))}`,
            );
          }
        } else if (!podSeccompSet) {
          add(
            `${c.path}.securityContext.seccompProfile.type`,
            `pod or ${c.label} must set seccompProfile type "RuntimeDefault" or "Localhost"`,
          );
        }
      }
    },
  ],
  // Sysctls
  [
    PodSecurityCheck.Sysctls,
    ({ podSC }, add) => {
      asArray(podSC?.sysctls).forEach((sysctl, index) => {
        const name = asObject(sysctl)?.name;
        if (!SAFE_SYSCTLS.has(name as string)) {
          add(
            `spec.securityContext.sysctls[${index}].name`,
            `pod must not set unsafe sysctl ${JSON.stringify(name)}`,
          );
        }
      });
    },
  ],
  // Container ulimits (Kubernetes 1.37+)
  [
    PodSecurityCheck.Ulimits,
    ({ containers }, add) => {
      for (const c of containers) {
        if (isSet(c.securityContext?.ulimits)) {
          add(`${c.path}.securityContext.ulimits`, `${c.label} must not set securityContext.ulimits`);
        }
      }
    },
  ],
  // Volume types (hostPath among them)
  [
    PodSecurityCheck.VolumeTypes,
    ({ spec }, add) => {
      asArray(spec.volumes).forEach((item, index) => {
        const volume = asObject(item) ?? {};
        const sources = Object.keys(volume).filter((key) => key !== "name" && isSet(volume[key]));
        if (sources.some((source) => RESTRICTED_VOLUME_SOURCES.has(source))) return;
        const name = typeof volume.name === "string" ? volume.name : `#${index}`;
        const kinds = sources.length > 0 ? sources.sort().join(", ") : "unknown";
        add(`spec.volumes[${index}]`, `volume "${name}" must not use volume type ${kinds}`);
      });
    },
  ],
  // Privilege escalation: explicitly false everywhere
  [
    PodSecurityCheck.AllowPrivilegeEscalation,
    ({ containers }, add) => {
      for (const c of containers) {
        if (c.securityContext?.allowPrivilegeEscalation !== false) {
          add(
            `${c.path}.securityContext.allowPrivilegeEscalation`,
            `${c.label} must set securityContext.allowPrivilegeEscalation=false`,
          );
        }
      }
    },
  ],
  // Non-root: the pod says true, or every container does; nobody says false
  [
    PodSecurityCheck.RunAsNonRoot,
    ({ podSC, containers }, add) => {
      const podNonRoot = podSC?.runAsNonRoot;
      if (isSet(podNonRoot) && podNonRoot !== true) {
        add("spec.securityContext.runAsNonRoot", "pod must not set securityContext.runAsNonRoot=false");
      }
      for (const c of containers) {
        const nonRoot = c.securityContext?.runAsNonRoot;
        if (isSet(nonRoot)) {
          if (nonRoot !== true) {
            add(
              `${c.path}.securityContext.runAsNonRoot`,
              `${c.label} must not set securityContext.runAsNonRoot=false`,
            );
          }
        } else if (podNonRoot !== true) {
          add(
            `${c.path}.securityContext.runAsNonRoot`,
            `pod or ${c.label} must set securityContext.runAsNonRoot=true`,
          );
        }
      }
    },
  ],
  // Non-root user id
  [
    PodSecurityCheck.RunAsUser,
    ({ podSC, containers }, add) => {
      if (isSet(podSC?.runAsUser) && podSC?.runAsUser === 0) {
        add("spec.securityContext.runAsUser", "pod must not set runAsUser=0");
      }
      for (const c of containers) {
        if (c.securityContext?.runAsUser === 0) {
          add(`${c.path}.securityContext.runAsUser`, `${c.label} must not set runAsUser=0`);
        }
      }
    },
  ],
  // Writable cgroups (Kubernetes 1.38+)
  [
    PodSecurityCheck.CgroupOptions,
    ({ containers }, add) => {
      for (const c of containers) {
        if (asObject(c.securityContext?.cgroupOptions)?.mountMode === "Writable") {
          add(
            `${c.path}.securityContext.cgroupOptions.mountMode`,
            `${c.label} must not mount its cgroup writable`,
          );
        }
      }
    },
  ],
];

/**
 * The violations of the restricted Pod Security Standard in a pod spec (and its template metadata,
 * for AppArmor annotations), in a stable order. Empty means the pod passes. Windows relaxations are
 * not applied: tenant pods run on Linux nodes.
 */
export function checkRestrictedPodSecurity(podSpec: unknown, podMetadata?: unknown): PodSecurityViolation[] {
  const spec = asObject(podSpec) ?? {};
  const pod = { spec, podSC: asObject(spec.securityContext), containers: containersOf(spec), podMetadata };
  const found: PodSecurityViolation[] = [];
  for (const [check, find] of CHECKS) find(pod, (path, message) => found.push({ check, path, message }));
  return found;
}
