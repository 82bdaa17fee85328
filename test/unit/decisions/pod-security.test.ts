import { describe, expect, it } from "vitest";
import { checkRestrictedPodSecurity, type PodSecurityCheck } from "../../../src/decisions/pod-security.ts";

type Spec = Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any

/** A pod spec that passes the restricted profile, with one of each kind of container. */
function compliant(): Spec {
  const sc = () => ({ allowPrivilegeEscalation: false, capabilities: { drop: ["ALL"] } });
  return {
    securityContext: { runAsNonRoot: true, seccompProfile: { type: "RuntimeDefault" } },
    initContainers: [{ name: "init", image: "busybox", securityContext: sc() }],
    containers: [
      {
        name: "app",
        image: "app",
        ports: [{ containerPort: 8080 }],
        securityContext: { ...sc(), capabilities: { drop: ["ALL"], add: ["NET_BIND_SERVICE"] } },
        livenessProbe: { httpGet: { path: "/", port: 8080 } },
      },
    ],
    ephemeralContainers: [{ name: "debug", image: "busybox", securityContext: sc() }],
    volumes: [
      { name: "cm", configMap: { name: "x" } },
      { name: "tmp", emptyDir: {} },
      { name: "sec", secret: { secretName: "s" } },
      { name: "data", persistentVolumeClaim: { claimName: "d" } },
      { name: "proj", projected: { sources: [] } },
      { name: "down", downwardAPI: { items: [] } },
      { name: "eph", ephemeral: { volumeClaimTemplate: {} } },
      { name: "csi", csi: { driver: "d" } },
      { name: "img", image: { reference: "r" } },
    ],
  };
}

function checks(spec: Spec, metadata?: unknown): PodSecurityCheck[] {
  return checkRestrictedPodSecurity(spec, metadata).map((v) => v.check);
}

describe("checkRestrictedPodSecurity", () => {
  it("passes a compliant pod", () => {
    expect(checkRestrictedPodSecurity(compliant())).toEqual([]);
  });

  const cases: [string, (s: Spec) => void, PodSecurityCheck, string][] = [
    [
      "pod HostProcess",
      (s) => (s.securityContext.windowsOptions = { hostProcess: true }),
      "hostProcess",
      "spec.securityContext.windowsOptions.hostProcess",
    ],
    [
      "container HostProcess",
      (s) => (s.containers[0].securityContext.windowsOptions = { hostProcess: true }),
      "hostProcess",
      "spec.containers[0].securityContext.windowsOptions.hostProcess",
    ],
    ["hostNetwork", (s) => (s.hostNetwork = true), "hostNamespaces", "spec.hostNetwork"],
    ["hostPID", (s) => (s.hostPID = true), "hostNamespaces", "spec.hostPID"],
    ["hostIPC", (s) => (s.hostIPC = true), "hostNamespaces", "spec.hostIPC"],
    [
      "privileged container",
      (s) => (s.containers[0].securityContext.privileged = true),
      "privileged",
      "spec.containers[0].securityContext.privileged",
    ],
    [
      "privileged init container",
      (s) => (s.initContainers[0].securityContext.privileged = true),
      "privileged",
      "spec.initContainers[0].securityContext.privileged",
    ],
    [
      "privileged ephemeral container",
      (s) => (s.ephemeralContainers[0].securityContext.privileged = true),
      "privileged",
      "spec.ephemeralContainers[0].securityContext.privileged",
    ],
    [
      "added capability",
      (s) => s.containers[0].securityContext.capabilities.add.push("SYS_ADMIN"),
      "capabilities",
      "spec.containers[0].securityContext.capabilities.add",
    ],
    [
      "baseline capability added",
      (s) => (s.initContainers[0].securityContext.capabilities.add = ["CHOWN"]),
      "capabilities",
      "spec.initContainers[0].securityContext.capabilities.add",
    ],
    [
      "ALL not dropped",
      (s) => (s.containers[0].securityContext.capabilities.drop = ["NET_RAW"]),
      "capabilities",
      "spec.containers[0].securityContext.capabilities.drop",
    ],
    [
      "hostPort",
      (s) => (s.containers[0].ports[0].hostPort = 80),
      "hostPorts",
      "spec.containers[0].ports[0].hostPort",
    ],
    [
      "probe host",
      (s) => (s.containers[0].livenessProbe.httpGet.host = "10.0.0.1"),
      "hostProbesAndLifecycle",
      "spec.containers[0].livenessProbe.httpGet.host",
    ],
    [
      "tcp probe host",
      (s) => (s.containers[0].readinessProbe = { tcpSocket: { port: 1, host: "h" } }),
      "hostProbesAndLifecycle",
      "spec.containers[0].readinessProbe.tcpSocket.host",
    ],
    [
      "lifecycle host",
      (s) => (s.containers[0].lifecycle = { preStop: { httpGet: { port: 1, host: "h" } } }),
      "hostProbesAndLifecycle",
      "spec.containers[0].lifecycle.preStop.httpGet.host",
    ],
    [
      "pod AppArmor unconfined",
      (s) => (s.securityContext.appArmorProfile = { type: "Unconfined" }),
      "appArmorProfile",
      "spec.securityContext.appArmorProfile.type",
    ],
    [
      "container AppArmor unconfined",
      (s) => (s.containers[0].securityContext.appArmorProfile = { type: "Unconfined" }),
      "appArmorProfile",
      "spec.containers[0].securityContext.appArmorProfile.type",
    ],
    [
      "SELinux type",
      (s) => (s.securityContext.seLinuxOptions = { type: "spc_t" }),
      "seLinuxOptions",
      "spec.securityContext.seLinuxOptions",
    ],
    [
      "SELinux user",
      (s) => (s.containers[0].securityContext.seLinuxOptions = { user: "root" }),
      "seLinuxOptions",
      "spec.containers[0].securityContext.seLinuxOptions",
    ],
    [
      "SELinux role",
      (s) => (s.containers[0].securityContext.seLinuxOptions = { role: "r" }),
      "seLinuxOptions",
      "spec.containers[0].securityContext.seLinuxOptions",
    ],
    [
      "procMount Unmasked",
      (s) => (s.containers[0].securityContext.procMount = "Unmasked"),
      "procMount",
      "spec.containers[0].securityContext.procMount",
    ],
    [
      "pod seccomp Unconfined",
      (s) => (s.securityContext.seccompProfile = { type: "Unconfined" }),
      "seccompProfile",
      "spec.securityContext.seccompProfile.type",
    ],
    [
      "container seccomp Unconfined",
      (s) => (s.containers[0].securityContext.seccompProfile = { type: "Unconfined" }),
      "seccompProfile",
      "spec.containers[0].securityContext.seccompProfile.type",
    ],
    [
      "unsafe sysctl",
      (s) => (s.securityContext.sysctls = [{ name: "kernel.msgmax", value: "1" }]),
      "sysctls",
      "spec.securityContext.sysctls[0].name",
    ],
    [
      "ulimits",
      (s) => (s.containers[0].securityContext.ulimits = [{ name: "nofile" }]),
      "ulimits",
      "spec.containers[0].securityContext.ulimits",
    ],
    [
      "hostPath volume",
      (s) => s.volumes.push({ name: "h", hostPath: { path: "/" } }),
      "restrictedVolumes",
      "spec.volumes[9]",
    ],
    [
      "nfs volume",
      (s) => s.volumes.push({ name: "n", nfs: { server: "x", path: "/" } }),
      "restrictedVolumes",
      "spec.volumes[9]",
    ],
    [
      "gitRepo volume",
      (s) => s.volumes.push({ name: "g", gitRepo: { repository: "r" } }),
      "restrictedVolumes",
      "spec.volumes[9]",
    ],
    ["volume without a source", (s) => s.volumes.push({ name: "u" }), "restrictedVolumes", "spec.volumes[9]"],
    [
      "allowPrivilegeEscalation true",
      (s) => (s.containers[0].securityContext.allowPrivilegeEscalation = true),
      "allowPrivilegeEscalation",
      "spec.containers[0].securityContext.allowPrivilegeEscalation",
    ],
    [
      "allowPrivilegeEscalation unset",
      (s) => delete s.ephemeralContainers[0].securityContext.allowPrivilegeEscalation,
      "allowPrivilegeEscalation",
      "spec.ephemeralContainers[0].securityContext.allowPrivilegeEscalation",
    ],
    [
      "pod runAsNonRoot false",
      (s) => (s.securityContext.runAsNonRoot = false),
      "runAsNonRoot",
      "spec.securityContext.runAsNonRoot",
    ],
    [
      "container runAsNonRoot false",
      (s) => (s.containers[0].securityContext.runAsNonRoot = false),
      "runAsNonRoot",
      "spec.containers[0].securityContext.runAsNonRoot",
    ],
    [
      "pod runAsUser 0",
      (s) => (s.securityContext.runAsUser = 0),
      "runAsUser",
      "spec.securityContext.runAsUser",
    ],
    [
      "container runAsUser 0",
      (s) => (s.initContainers[0].securityContext.runAsUser = 0),
      "runAsUser",
      "spec.initContainers[0].securityContext.runAsUser",
    ],
    [
      "writable cgroup",
      (s) => (s.containers[0].securityContext.cgroupOptions = { mountMode: "Writable" }),
      "cgroupOptions",
      "spec.containers[0].securityContext.cgroupOptions.mountMode",
    ],
  ];

  it.each(cases)("refuses %s", (_name, mutate, check, path) => {
    const spec = compliant();
    mutate(spec);
    const found = checkRestrictedPodSecurity(spec);
    // A bad pod-level value also leaves the containers that inherit it flagged, under the same check.
    expect(found[0]).toEqual({ check, path, message: expect.any(String) });
    expect(new Set(found.map((v) => v.check))).toEqual(new Set([check]));
  });

  it("names the container in its messages", () => {
    const spec = compliant();
    spec.containers[0].securityContext.privileged = true;
    expect(checkRestrictedPodSecurity(spec)[0]!.message).toBe('container "app" must not be privileged');
  });

  it("requires seccomp and runAsNonRoot on the pod or on every container", () => {
    const spec = compliant();
    delete spec.securityContext;
    const missing = checkRestrictedPodSecurity(spec).filter(
      (v) => v.check === "seccompProfile" || v.check === "runAsNonRoot",
    );
    expect(missing).toHaveLength(6);
    for (const c of [...spec.initContainers, ...spec.containers, ...spec.ephemeralContainers]) {
      c.securityContext.seccompProfile = { type: "Localhost", localhostProfile: "p.json" };
      c.securityContext.runAsNonRoot = true;
    }
    expect(checkRestrictedPodSecurity(spec)).toEqual([]);
  });

  it("allows the other values the profile allows", () => {
    const spec = compliant();
    spec.securityContext.sysctls = [
      { name: "net.ipv4.tcp_keepalive_time", value: "60" },
      { name: "net.ipv4.ip_unprivileged_port_start", value: "0" },
    ];
    spec.securityContext.seLinuxOptions = { type: "container_t", level: "s0:c1" };
    spec.securityContext.appArmorProfile = { type: "Localhost", localhostProfile: "p" };
    spec.securityContext.runAsUser = 1000;
    spec.containers[0].securityContext.procMount = "Default";
    spec.containers[0].ports[0].hostPort = 0;
    spec.containers[0].securityContext.cgroupOptions = { mountMode: "ReadOnly" };
    const metadata = {
      annotations: { "container.apparmor.security.beta.kubernetes.io/app": "localhost/p", other: "x" },
    };
    expect(checkRestrictedPodSecurity(spec, metadata)).toEqual([]);
  });

  it("refuses an unconfined AppArmor annotation", () => {
    const metadata = { annotations: { "container.apparmor.security.beta.kubernetes.io/app": "unconfined" } };
    expect(checks(compliant(), metadata)).toEqual(["appArmorProfile"]);
  });

  it("reads garbage defensively: a template that is not an object cannot pass", () => {
    expect(checkRestrictedPodSecurity(null)).toEqual([]);
    const spec = { containers: ["not an object", { name: 3, securityContext: "x" }] };
    const found = checks(spec);
    expect(found).toContain("allowPrivilegeEscalation");
    expect(found).toContain("capabilities");
    expect(found).toContain("seccompProfile");
  });
});
