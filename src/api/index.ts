// The custom resources' API: schemas, types, names and parse helpers. The CRD and reference
// generators (crd.ts, reference.ts, structural.ts) are imported by path: the operator never needs
// them, and loading them (and the YAML library) costs it memory.
export * from "./names.ts";
export * from "./resources.ts";
export * from "./quantity.ts";
export * from "./rules.ts";
export * from "./common.ts";
export * from "./conditions.ts";
export * from "./parse.ts";
export * from "./pool.ts";
export * from "./claim.ts";
export * from "./storage-service.ts";
