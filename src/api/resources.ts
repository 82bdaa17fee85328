// The custom resources as the API server serves them, and the annotations users set on them. One
// place, so the operator, the CLI and the tests name them alike.
import type { ResourceRef } from "../kube/resources.ts";
import {
  CLAIM_KIND,
  CLAIM_PLURAL,
  GROUP,
  POOL_KIND,
  POOL_PLURAL,
  STORAGE_SERVICE_KIND,
  STORAGE_SERVICE_PLURAL,
  VERSION,
} from "./names.ts";

export const poolResource: ResourceRef = {
  group: GROUP,
  version: VERSION,
  plural: POOL_PLURAL,
  kind: POOL_KIND,
  namespaced: false,
};

export const claimResource: ResourceRef = {
  group: GROUP,
  version: VERSION,
  plural: CLAIM_PLURAL,
  kind: CLAIM_KIND,
  namespaced: true,
};

export const storageServiceResource: ResourceRef = {
  group: GROUP,
  version: VERSION,
  plural: STORAGE_SERVICE_PLURAL,
  kind: STORAGE_SERVICE_KIND,
  namespaced: true,
};

/** Annotations users set on a StorageService; every new value asks the operator for one action. */
export const serviceAnnotations = {
  /** Move the head onto contingency capacity by hand (a switchover). */
  switchover: `${GROUP}/switchover`,
  /** Move the head from its slot back to the primary zone (Manual failback). */
  failback: `${GROUP}/failback`,
} as const;
