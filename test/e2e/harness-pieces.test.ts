// The e2e harness's pure pieces: how the pod runner reads a container's command and env the way the
// kubelet does, and how write unavailability is measured from acknowledged writes.
import type * as k8s from "@kubernetes/client-node";
import { describe, expect, it } from "vitest";
import { dataplaneArgs, expandVars, fieldValue, podHostnames } from "../support/pod-runner.ts";
import { writeUnavailability, type WriteAck } from "./support/traffic.ts";

describe("dataplaneArgs", () => {
  it("takes what follows the script, whatever runs it", () => {
    expect(dataplaneArgs(["node", "src/dataplane/main.ts", "head"], "head")).toEqual(["head"]);
    expect(
      dataplaneArgs(["node", "/app/dist/src/dataplane/main.js", "server", "--zone", "a"], "server"),
    ).toEqual(["server", "--zone", "a"]);
    expect(dataplaneArgs(["understudy-dataplane", "server"], "server")).toEqual(["server"]);
  });

  it("starts at the role word when there is no script, and adds the role when there is none", () => {
    expect(dataplaneArgs(["/bin/understudy", "dataplane", "head", "--epoch", "3"], "head")).toEqual([
      "head",
      "--epoch",
      "3",
    ]);
    expect(dataplaneArgs([], "server")).toEqual(["server"]);
    expect(dataplaneArgs(["node", "src/dataplane/main.ts"], "head")).toEqual(["head"]);
    expect(dataplaneArgs(["--log-level", "debug"], "server")).toEqual(["server", "--log-level", "debug"]);
  });
});

describe("expandVars", () => {
  const vars = new Map([
    ["POD_NAME", "s-0"],
    ["NS", "db"],
  ]);
  it("replaces defined $(VAR)s, keeps unknown ones and unescapes $$", () => {
    expect(expandVars("$(POD_NAME).set.$(NS).svc:7001", vars)).toBe("s-0.set.db.svc:7001");
    expect(expandVars("$(MISSING)-$(NS)", vars)).toBe("$(MISSING)-db");
    expect(expandVars("$$(POD_NAME) costs $$5", vars)).toBe("$(POD_NAME) costs $5");
  });
});

describe("fieldValue and podHostnames", () => {
  const pod: k8s.V1Pod = {
    metadata: { name: "s-0", namespace: "db", uid: "u1", labels: { zone: "zone-a" } },
    spec: { nodeName: "n1", hostname: "s-0", subdomain: "set", containers: [] },
    status: { podIP: "127.10.0.9", hostIP: "127.0.0.1" },
  };
  it("reads the downward API's paths", () => {
    expect(fieldValue(pod, "status.podIP")).toBe("127.10.0.9");
    expect(fieldValue(pod, "metadata.namespace")).toBe("db");
    expect(fieldValue(pod, "spec.nodeName")).toBe("n1");
    expect(fieldValue(pod, "metadata.labels['zone']")).toBe("zone-a");
    expect(() => fieldValue(pod, "spec.bogus")).toThrow(/not supported/);
  });
  it("names a StatefulSet pod as cluster DNS would", () => {
    expect(podHostnames(pod)).toEqual(["s-0.set.db", "s-0.set.db.svc", "s-0.set.db.svc.cluster.local"]);
    expect(podHostnames({ ...pod, spec: { containers: [] } })).toEqual([]);
  });
});

describe("writeUnavailability", () => {
  const ack = (ret: number): WriteAck => ({ clientId: 0, label: "c", call: ret - 1, ret });
  it("is the longest gap between acknowledged writes that ends after the fault", () => {
    const acks = [100, 200, 300, 1900, 2000, 2100].map(ack);
    expect(writeUnavailability(acks, 350)).toEqual({ gapMs: 1600, from: 300, to: 1900 });
  });
  it("ignores gaps that ended before the fault", () => {
    const acks = [0, 5000, 5100, 5300].map(ack);
    expect(writeUnavailability(acks, 5050).gapMs).toBe(200);
  });
  it("counts from the fault when nothing was acknowledged before it", () => {
    expect(writeUnavailability([ack(900)], 100)).toEqual({ gapMs: 800, from: 100, to: 900 });
  });
});
