// Names of the custom resources on the cluster. Every other file takes them from here.

export const GROUP = "understudy.dev";
export const VERSION = "v1alpha1";
export const API_VERSION = `${GROUP}/${VERSION}`;

/** The category every Understudy resource is in: `kubectl get understudy` lists them all. */
export const CATEGORY = "understudy";

export interface ResourceNames {
  kind: string;
  listKind: string;
  plural: string;
  singular: string;
  shortNames: string[];
  scope: "Cluster" | "Namespaced";
}

export const POOL_KIND = "ContingencyPool";
export const POOL_PLURAL = "contingencypools";
export const CLAIM_KIND = "PoolClaim";
export const CLAIM_PLURAL = "poolclaims";
export const STORAGE_SERVICE_KIND = "StorageService";
export const STORAGE_SERVICE_PLURAL = "storageservices";

export const POOL_NAMES: ResourceNames = {
  kind: POOL_KIND,
  listKind: `${POOL_KIND}List`,
  plural: POOL_PLURAL,
  singular: "contingencypool",
  shortNames: ["cpool"],
  scope: "Cluster",
};

export const CLAIM_NAMES: ResourceNames = {
  kind: CLAIM_KIND,
  listKind: `${CLAIM_KIND}List`,
  plural: CLAIM_PLURAL,
  singular: "poolclaim",
  shortNames: ["pclaim"],
  scope: "Namespaced",
};

export const STORAGE_SERVICE_NAMES: ResourceNames = {
  kind: STORAGE_SERVICE_KIND,
  listKind: `${STORAGE_SERVICE_KIND}List`,
  plural: STORAGE_SERVICE_PLURAL,
  singular: "storageservice",
  shortNames: ["ssvc"],
  scope: "Namespaced",
};
