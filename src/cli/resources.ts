// The custom resources the CLI reads, and the annotation it writes.
import {
  CLAIM_KIND,
  CLAIM_PLURAL,
  GROUP,
  POOL_KIND,
  POOL_PLURAL,
  STORAGE_SERVICE_KIND,
  STORAGE_SERVICE_PLURAL,
  VERSION,
} from "../api/index.ts";
import type { ResourceRef } from "../kube/resources.ts";

export const pools: ResourceRef = {
  group: GROUP,
  version: VERSION,
  plural: POOL_PLURAL,
  kind: POOL_KIND,
  namespaced: false,
};
export const claims: ResourceRef = {
  group: GROUP,
  version: VERSION,
  plural: CLAIM_PLURAL,
  kind: CLAIM_KIND,
  namespaced: true,
};
export const services: ResourceRef = {
  group: GROUP,
  version: VERSION,
  plural: STORAGE_SERVICE_PLURAL,
  kind: STORAGE_SERVICE_KIND,
  namespaced: true,
};

/**
 * Annotation on a StorageService asking for a manual switchover: every new value asks for one
 * failover of the head (reason Switchover), as a user-visible switch in the manner of CloudNativePG.
 */
export const SWITCHOVER_ANNOTATION = `${GROUP}/switchover`;
