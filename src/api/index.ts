// The custom resources' API: schemas, types, names and parse helpers.
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
export * from "./structural.ts";
export * from "./crd.ts";
export * from "./reference.ts";
