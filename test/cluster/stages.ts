import { execFileSync } from "node:child_process";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { parseAllDocuments, stringify } from "yaml";
import { versions } from "./config.ts";

// KWOK plays the kubelet through Stage documents. We take the stages that ship in the kwok module,
// shorten their delays (upstream waits 1-6 s before a pod runs; failover tests want milliseconds)
// and add fault stages that tests switch on with a label, an annotation or an image.
//
// Head and server pods may have a real process behind them (the e2e pod runner, test/support/
// pod-runner.ts). The runner claims such a pod with an annotation as soon as it sees it; KWOK then
// only marks it Running, and the runner reports readiness from the process, as a kubelet does. A
// head or server pod nobody claims (integration tests run no processes) is made Ready by KWOK
// after a short wait instead, as before.

const upstreamStages = [
  "node/fast/node-initialize.yaml",
  "node/heartbeat-with-lease/node-heartbeat-with-lease.yaml",
  "node/chaos/node-not-ready.yaml",
  "pod/general/pod-create.yaml",
  "pod/general/pod-init-container-running.yaml",
  "pod/general/pod-init-container-completed.yaml",
  "pod/general/pod-ready.yaml",
  "pod/general/pod-complete.yaml",
  "pod/general/pod-delete.yaml",
  "pod/chaos/pod-container-running-failed.yaml",
];

/** Label on a node that makes KWOK report it NotReady (the upstream chaos stage). */
export const nodeNotReadyLabel = "node-not-ready.stage.kwok.x-k8s.io";
/** Label on a pod that makes KWOK fail its containers (phase Failed). */
export const podFailedLabel = "pod-container-running-failed.stage.kwok.x-k8s.io";
/** Annotation on a pod that makes KWOK report it Running but not Ready. */
export const podNotReadyAnnotation = "fault.understudy.dev/not-ready";
/** Annotation by which a process runner (the e2e pod runner) claims a pod: it reports its readiness. */
export const kubeletAnnotation = "understudy.dev/kubelet";
/** Pods a process runner may claim (the label understudy.dev/role). */
const processRoles = ["head", "server"];
/** How long KWOK waits for a runner to claim a head or server pod before it makes the pod Ready itself. */
const UNCLAIMED_READY_DELAY_MS = 500;

type Selector = { key: string; operator: string; values?: string[] };
type StageSpec = {
  selector: { matchExpressions: Selector[] };
  delay?: Record<string, unknown>;
  next: { statusTemplate?: string } & Record<string, unknown>;
} & Record<string, unknown>;

const roleSelector = (operator: "In" | "NotIn"): Selector => ({
  key: '.metadata.labels["understudy.dev/role"]',
  operator,
  values: processRoles,
});
const claimed = (operator: "Exists" | "DoesNotExist"): Selector => ({
  key: `.metadata.annotations["${kubeletAnnotation}"]`,
  operator,
});

/** Status template lines: the Ready and ContainersReady conditions False, for `reason`. */
const notReadyConditions = (reason: string): string[] =>
  ["Ready", "ContainersReady"].flatMap((type) => [
    "- lastTransitionTime: {{ $now | Quote }}",
    '  status: "False"',
    `  reason: ${reason}`,
    `  type: ${type}`,
  ]);

/** Status template lines: every container not ready, `started` as given, in the state given. */
const containerStatuses = (started: boolean, state: string[]): string[] => [
  "containerStatuses:",
  "{{ range .spec.containers }}",
  "- image: {{ .image | Quote }}",
  "  name: {{ .name | Quote }}",
  "  ready: false",
  "  restartCount: 0",
  `  started: ${started}`,
  "  state:",
  ...state.map((line) => `    ${line}`),
  "{{ end }}",
];

/** A claimed pod becomes Running but not Ready: its runner reports Ready once its process is. */
const runningNotReadyTemplate = [
  "{{ $now := Now }}",
  "conditions:",
  "- lastTransitionTime: {{ $now | Quote }}",
  '  status: "True"',
  "  type: Initialized",
  ...notReadyConditions("ContainersNotReady"),
  ...containerStatuses(false, ["waiting:", "  reason: ContainerCreating"]),
  "phase: Running",
  "startTime: {{ $now | Quote }}",
  "",
].join("\n");

/**
 * Upstream pod-ready, split three ways: other pods as upstream; head and server pods a runner
 * claimed become Running, not Ready; unclaimed ones become Ready after UNCLAIMED_READY_DELAY_MS.
 */
function splitPodReady(stage: StageDoc): StageDoc[] {
  const spec = stage.spec as unknown as StageSpec;
  const matching = spec.selector.matchExpressions;
  const variant = (name: string, extra: Selector[], changes: Partial<StageSpec>): StageDoc =>
    ({
      ...stage,
      metadata: { name },
      spec: {
        ...spec,
        selector: { matchExpressions: [...matching, ...extra] },
        weightFrom: undefined,
        delayFrom: undefined,
        ...changes,
      },
    }) as unknown as StageDoc;
  return [
    { ...stage, spec: { ...spec, selector: { matchExpressions: [...matching, roleSelector("NotIn")] } } },
    variant("understudy-pod-ready-unclaimed", [roleSelector("In"), claimed("DoesNotExist")], {
      delay: { durationMilliseconds: UNCLAIMED_READY_DELAY_MS },
    }),
    variant("understudy-pod-running-claimed", [roleSelector("In"), claimed("Exists")], {
      delay: { durationMilliseconds: 0 },
      next: { ...spec.next, statusTemplate: runningNotReadyTemplate },
    }),
  ] as StageDoc[];
}

const podNotReadyStage = {
  apiVersion: "kwok.x-k8s.io/v1alpha1",
  kind: "Stage",
  metadata: { name: "understudy-pod-not-ready" },
  spec: {
    resourceRef: { apiGroup: "v1", kind: "Pod" },
    selector: {
      matchExpressions: [
        { key: `.metadata.annotations["${podNotReadyAnnotation}"]`, operator: "In", values: ["true"] },
        { key: ".metadata.deletionTimestamp", operator: "DoesNotExist" },
        { key: ".status.phase", operator: "In", values: ["Running"] },
        {
          key: '.status.conditions.[] | select( .type == "Ready" ) | .status',
          operator: "In",
          values: ["True"],
        },
      ],
    },
    weight: 10000,
    delay: { durationMilliseconds: 0 },
    next: {
      statusTemplate: [
        "{{ $now := Now }}",
        "conditions:",
        "- lastTransitionTime: {{ $now | Quote }}",
        '  status: "False"',
        "  reason: FaultInjected",
        "  type: Ready",
        "- lastTransitionTime: {{ $now | Quote }}",
        '  status: "False"',
        "  reason: FaultInjected",
        "  type: ContainersReady",
        "",
      ].join("\n"),
    },
  },
};

/**
 * Image of a container that starts but never reports Ready (a head that cannot fence its partitions,
 * say). Unlike the annotation above it is in the pod from its creation, so a pod the operator creates
 * from a spec carrying this image is never Ready, not even for a moment.
 */
export const neverReadyImage = "registry.example/understudy:never-ready";

const podNeverReadyStage = {
  apiVersion: "kwok.x-k8s.io/v1alpha1",
  kind: "Stage",
  metadata: { name: "understudy-pod-never-ready" },
  spec: {
    resourceRef: { apiGroup: "v1", kind: "Pod" },
    // Where upstream pod-ready would make the pod Running and Ready: Running, not Ready, instead.
    selector: {
      matchExpressions: [
        { key: ".spec.containers.[0].image", operator: "In", values: [neverReadyImage] },
        { key: ".metadata.deletionTimestamp", operator: "DoesNotExist" },
        { key: ".status.phase", operator: "In", values: ["Pending"] },
        {
          key: '.status.conditions.[] | select( .type == "Initialized" ) | .status',
          operator: "In",
          values: ["True"],
        },
        { key: ".status.containerStatuses.[].state.running.startedAt", operator: "DoesNotExist" },
      ],
    },
    // Both this and pod-ready match; KWOK picks among matching stages by weight.
    weight: 1_000_000,
    delay: { durationMilliseconds: 20 },
    next: {
      statusTemplate: [
        "{{ $now := Now }}",
        "conditions:",
        ...notReadyConditions("NeverReady"),
        ...containerStatuses(true, ["running:", "  startedAt: {{ $now | Quote }}"]),
        "phase: Running",
        "startTime: {{ $now | Quote }}",
        "",
      ].join("\n"),
    },
  },
};

/**
 * A deleted pod that carries a finalizer (a Job's pods carry batch.kubernetes.io/job-tracking)
 * ends as a kubelet ends it: its containers stop by the deletion deadline and it turns Failed.
 * Upstream pod-delete only removes pods without finalizers, so such a pod would run forever and
 * its Job would never see it go; the Job controller removes its finalizer once it is Failed, and
 * pod-delete then removes it.
 */
const podTerminateWithFinalizersStage = {
  apiVersion: "kwok.x-k8s.io/v1alpha1",
  kind: "Stage",
  metadata: { name: "understudy-pod-terminate-with-finalizers" },
  spec: {
    resourceRef: { apiGroup: "v1", kind: "Pod" },
    selector: {
      matchExpressions: [
        { key: ".metadata.deletionTimestamp", operator: "Exists" },
        { key: ".metadata.finalizers", operator: "Exists" },
        { key: ".status.phase", operator: "In", values: ["Pending", "Running"] },
      ],
    },
    weight: 1,
    delay: {
      durationMilliseconds: 20,
      jitterDurationFrom: { expressionFrom: ".metadata.deletionTimestamp" },
    },
    next: {
      statusTemplate: [
        "{{ $now := Now }}",
        "conditions:",
        ...notReadyConditions("PodFailed"),
        ...containerStatuses(false, [
          "terminated:",
          "  exitCode: 137",
          "  reason: Error",
          "  finishedAt: {{ $now | Quote }}",
        ]),
        "phase: Failed",
        "",
      ].join("\n"),
    },
  },
};

export function kwokModuleDir(): string {
  const out = execFileSync("go", ["mod", "download", "-json", `sigs.k8s.io/kwok@${versions.kwok}`], {
    encoding: "utf8",
    cwd: process.env.TMPDIR ?? "/tmp",
  });
  return (JSON.parse(out) as { Dir: string }).Dir;
}

type StageDoc = { metadata: { name: string }; spec: { delay?: Record<string, unknown> } };

function quicken(stage: StageDoc): StageDoc {
  const delay = stage.spec.delay;
  if (!delay) return stage;
  // The node heartbeat keeps its long period: node leases carry liveness, not node status updates.
  if (stage.metadata.name === "node-heartbeat-with-lease") return stage;
  const quick: Record<string, unknown> = { ...delay, durationMilliseconds: 20 };
  if ("jitterDurationMilliseconds" in quick) quick.jitterDurationMilliseconds = 60;
  // pod-delete jitters up to the deletionTimestamp, which honours the grace period: keep that.
  return { ...stage, spec: { ...stage.spec, delay: quick } };
}

export function renderStages(moduleDir = kwokModuleDir()): string {
  const docs = upstreamStages.flatMap((file) =>
    parseAllDocuments(readFileSync(join(moduleDir, "kustomize", "stage", file), "utf8")).map(
      (d) => d.toJSON() as StageDoc,
    ),
  );
  const stages = docs.map(quicken).flatMap((d) => (d.metadata.name === "pod-ready" ? splitPodReady(d) : [d]));
  return [...stages, podNotReadyStage, podNeverReadyStage, podTerminateWithFinalizersStage]
    .map((d) => stringify(d))
    .join("---\n");
}
