// The CustomResourceDefinitions, derived from the zod schemas: one source, so the CRDs in
// crds/ and the operator's own validation cannot drift apart. Pure: no file system here.
import { stringify } from "yaml";
import { z } from "zod";
import { ContingencyPoolSchema } from "./pool.ts";
import { PoolClaimSchema } from "./claim.ts";
import { StorageServiceSchema } from "./storage-service.ts";
import {
  CATEGORY,
  CLAIM_NAMES,
  GROUP,
  POOL_NAMES,
  STORAGE_SERVICE_NAMES,
  VERSION,
  type ResourceNames,
} from "./names.ts";
import { toStructuralSchema, type JsonSchema } from "./structural.ts";

interface PrinterColumn {
  name: string;
  type: "string" | "integer" | "number" | "boolean" | "date";
  jsonPath: string;
  description: string;
  /** 0: shown by `kubectl get`; 1: only with `-o wide`. */
  priority?: number;
}

export interface ResourceDefinition {
  names: ResourceNames;
  schema: z.ZodType;
  printerColumns: PrinterColumn[];
}

const AGE: PrinterColumn = {
  name: "Age",
  type: "date",
  jsonPath: ".metadata.creationTimestamp",
  description: "Time since the object was created.",
};

export const RESOURCE_DEFINITIONS: ResourceDefinition[] = [
  {
    names: POOL_NAMES,
    schema: ContingencyPoolSchema,
    printerColumns: [
      {
        name: "Zones",
        type: "string",
        jsonPath: ".status.zoneSummary",
        description: "Free and total slots by zone (zone:free/slots).",
      },
      {
        name: "Slots",
        type: "integer",
        jsonPath: ".status.slots",
        description: "Slots in all zones.",
        priority: 1,
      },
      { name: "Free", type: "integer", jsonPath: ".status.free", description: "Free slots." },
      {
        name: "Leased",
        type: "integer",
        jsonPath: ".status.leased",
        description: "Slots leased to tenant claims.",
      },
      {
        name: "Reserved",
        type: "integer",
        jsonPath: ".status.reserved",
        description: "Slots held by storage services.",
      },
      {
        name: "Pending",
        type: "integer",
        jsonPath: ".status.pending",
        description: "Slots whose capacity is not placed yet.",
        priority: 1,
      },
      {
        name: "Hot Spares",
        type: "integer",
        jsonPath: ".spec.hotSpares",
        description: "Slots kept free for failovers.",
        priority: 1,
      },
      {
        name: "Zone Outage",
        type: "number",
        jsonPath: ".status.failoverCapacity.zoneOutage",
        description:
          "Share of the worst zone's heads that would find a slot at once if that zone failed now.",
        priority: 1,
      },
      {
        name: "Failover Paused",
        type: "boolean",
        jsonPath: ".spec.failoverPaused",
        description: "Automatic failover paused for every storage service of the pool.",
      },
      AGE,
    ],
  },
  {
    names: CLAIM_NAMES,
    schema: PoolClaimSchema,
    printerColumns: [
      { name: "Pool", type: "string", jsonPath: ".spec.pool", description: "Pool the claim leases from." },
      { name: "Phase", type: "string", jsonPath: ".status.phase", description: "Phase of the claim." },
      { name: "Zone", type: "string", jsonPath: ".status.zone", description: "Zone of the claim's slot." },
      { name: "Node", type: "string", jsonPath: ".status.node", description: "Node of the claim's slot." },
      {
        name: "Bid",
        type: "integer",
        jsonPath: ".spec.bid",
        description: "Bid: lower bids are revoked first.",
      },
      {
        name: "Lease",
        type: "string",
        jsonPath: ".status.leaseName",
        description: "Slot Lease the claim holds.",
        priority: 1,
      },
      {
        name: "Reason",
        type: "string",
        jsonPath: ".status.reason",
        description: "Reason for the phase.",
        priority: 1,
      },
      AGE,
    ],
  },
  {
    names: STORAGE_SERVICE_NAMES,
    schema: StorageServiceSchema,
    printerColumns: [
      {
        name: "Phase",
        type: "string",
        jsonPath: ".status.phase",
        description: "Phase of the storage service.",
      },
      {
        name: "Head Zone",
        type: "string",
        jsonPath: ".status.head.zone",
        description: "Zone the head node runs in.",
      },
      {
        name: "Epoch",
        type: "integer",
        jsonPath: ".status.epoch",
        description: "Current epoch, raised at every failover.",
      },
      {
        name: "Failovers",
        type: "integer",
        jsonPath: ".status.failoverCount",
        description: "Failovers completed.",
      },
      {
        name: "Pool",
        type: "string",
        jsonPath: ".spec.pool",
        description: "Pool the head fails over to.",
        priority: 1,
      },
      {
        name: "Head Node",
        type: "string",
        jsonPath: ".status.head.node",
        description: "Node the head node runs on.",
        priority: 1,
      },
      {
        name: "Paused",
        type: "boolean",
        jsonPath: ".spec.failover.paused",
        description: "Automatic failover paused for this service (the pool's failoverPaused pauses it too).",
      },
      {
        name: "Failover Step",
        type: "string",
        jsonPath: ".status.failover.step",
        description: "Step of the failover in progress.",
        priority: 1,
      },
      AGE,
    ],
  },
];

const API_VERSION_DESCRIPTION =
  "APIVersion defines the versioned schema of this representation of an object. Servers should convert recognized schemas to the latest internal value, and may reject unrecognized values.";
const KIND_DESCRIPTION =
  "Kind is a string value representing the REST resource this object represents. Servers may infer this from the endpoint the client submits requests to. In CamelCase.";

/** The openAPIV3Schema of a resource: the structural form of its zod schema, with the root the API server expects. */
export function openApiSchema(schema: z.ZodType): JsonSchema {
  // Unrepresentable types (the Date a client may put into metadata) come out untyped, and
  // toStructuralSchema refuses untyped nodes anywhere but in metadata, replaced first.
  const raw = z.toJSONSchema(schema, {
    target: "openapi-3.0",
    io: "input",
    unrepresentable: "any",
  }) as JsonSchema;
  const properties = raw.properties as JsonSchema;
  // The API server owns apiVersion, kind and metadata; the CRD only names their types.
  properties.apiVersion = { type: "string", description: API_VERSION_DESCRIPTION };
  properties.kind = { type: "string", description: KIND_DESCRIPTION };
  properties.metadata = { type: "object" };
  const structural = toStructuralSchema(raw);
  structural.required = ((structural.required as string[] | undefined) ?? []).filter(
    (name) => !["apiVersion", "kind", "metadata"].includes(name),
  );
  return structural;
}

export function crdName(names: ResourceNames): string {
  return `${names.plural}.${GROUP}`;
}

function customResourceDefinition(definition: ResourceDefinition): JsonSchema {
  const { names } = definition;
  return {
    apiVersion: "apiextensions.k8s.io/v1",
    kind: "CustomResourceDefinition",
    metadata: {
      name: crdName(names),
      labels: { "app.kubernetes.io/name": "understudy", "app.kubernetes.io/part-of": "understudy" },
    },
    spec: {
      group: GROUP,
      names: {
        kind: names.kind,
        listKind: names.listKind,
        plural: names.plural,
        singular: names.singular,
        shortNames: names.shortNames,
        categories: [CATEGORY],
      },
      scope: names.scope,
      versions: [
        {
          name: VERSION,
          served: true,
          storage: true,
          subresources: { status: {} },
          additionalPrinterColumns: definition.printerColumns.map((column) => ({
            name: column.name,
            type: column.type,
            jsonPath: column.jsonPath,
            description: column.description,
            ...(column.priority ? { priority: column.priority } : {}),
          })),
          schema: { openAPIV3Schema: openApiSchema(definition.schema) },
        },
      ],
    },
  };
}

export function buildCrds(): JsonSchema[] {
  return RESOURCE_DEFINITIONS.map(customResourceDefinition);
}

export interface GeneratedFile {
  /** Path relative to the repository root. */
  path: string;
  content: string;
}

const HEADER = "# Generated by `npm run generate` from the zod schemas in src/api/. Do not edit by hand.\n";

/** The files of crds/, as `npm run generate` writes them. */
export function renderCrdFiles(): GeneratedFile[] {
  return RESOURCE_DEFINITIONS.map((definition) => ({
    path: `crds/${crdName(definition.names)}.yaml`,
    content: HEADER + stringify(customResourceDefinition(definition), { lineWidth: 0 }),
  }));
}
