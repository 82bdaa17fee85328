import * as k8s from "@kubernetes/client-node";
import { JsonPatchObjectApi, type JsonPatchOperation, type ObjectHeader } from "./json-patch.ts";
import { apiVersionOf, type ResourceRef } from "./resources.ts";

export const mergePatchOptions = k8s.setHeaderOptions("Content-Type", k8s.PatchStrategy.MergePatch);

export interface CustomObject<Spec = unknown, Status = unknown> extends k8s.KubernetesObject {
  spec: Spec;
  status?: Status;
}

/**
 * The typed access the controllers share: the generated API clients for built-in kinds, plus
 * custom objects by ResourceRef with server-side apply, merge patch and status subresource writes.
 */
export class KubeClient {
  readonly core: k8s.CoreV1Api;
  readonly apps: k8s.AppsV1Api;
  readonly coordination: k8s.CoordinationV1Api;
  readonly discovery: k8s.DiscoveryV1Api;
  readonly scheduling: k8s.SchedulingV1Api;
  readonly custom: k8s.CustomObjectsApi;
  readonly objects: JsonPatchObjectApi;

  readonly kc: k8s.KubeConfig;
  readonly fieldManager: string;

  constructor(kc: k8s.KubeConfig, fieldManager = "understudy") {
    this.kc = kc;
    this.fieldManager = fieldManager;
    this.core = kc.makeApiClient(k8s.CoreV1Api);
    this.apps = kc.makeApiClient(k8s.AppsV1Api);
    this.coordination = kc.makeApiClient(k8s.CoordinationV1Api);
    this.discovery = kc.makeApiClient(k8s.DiscoveryV1Api);
    this.scheduling = kc.makeApiClient(k8s.SchedulingV1Api);
    this.custom = kc.makeApiClient(k8s.CustomObjectsApi);
    this.objects = JsonPatchObjectApi.forConfig(kc);
  }

  /** Server-side apply: the object states every field this manager owns. */
  apply<T extends k8s.KubernetesObject>(obj: T, force = true): Promise<T> {
    return this.objects.patch(
      obj,
      undefined,
      undefined,
      this.fieldManager,
      force,
      k8s.PatchStrategy.ServerSideApply,
    );
  }

  /** A JSON Patch (RFC 6902) of any object; a failed `test` operation fails the whole patch. */
  jsonPatch<T extends k8s.KubernetesObject>(
    target: ObjectHeader,
    operations: readonly JsonPatchOperation[],
  ): Promise<T> {
    return this.objects.jsonPatch<T>(target, operations, this.fieldManager);
  }

  /** A JSON merge patch of any object; include metadata.resourceVersion to make it conditional. */
  mergePatch<T extends k8s.KubernetesObject>(
    header: { apiVersion: string; kind: string; metadata: { name: string; namespace?: string } },
    patch: Record<string, unknown>,
  ): Promise<T> {
    return this.objects.patch(
      {
        ...patch,
        apiVersion: header.apiVersion,
        kind: header.kind,
        metadata: { ...header.metadata, ...(patch.metadata ?? {}) },
      } as T,
      undefined,
      undefined,
      this.fieldManager,
      undefined,
      k8s.PatchStrategy.MergePatch,
    );
  }

  async getCustom<T extends CustomObject>(ref: ResourceRef, name: string, namespace?: string): Promise<T> {
    const base = { group: ref.group, version: ref.version, plural: ref.plural, name };
    return (await (ref.namespaced
      ? this.custom.getNamespacedCustomObject({ ...base, namespace: namespace! })
      : this.custom.getClusterCustomObject(base))) as T;
  }

  async listCustom<T extends CustomObject>(
    ref: ResourceRef,
    namespace?: string,
    labelSelector?: string,
  ): Promise<T[]> {
    const base = { group: ref.group, version: ref.version, plural: ref.plural, labelSelector };
    const list = (await (ref.namespaced && namespace
      ? this.custom.listNamespacedCustomObject({ ...base, namespace })
      : this.custom.listClusterCustomObject(base))) as { items: T[] };
    return list.items;
  }

  async createCustom<T extends CustomObject>(
    ref: ResourceRef,
    obj: Omit<T, "apiVersion" | "kind">,
  ): Promise<T> {
    const body = { apiVersion: apiVersionOf(ref), kind: ref.kind, ...obj };
    const base = {
      group: ref.group,
      version: ref.version,
      plural: ref.plural,
      body,
      fieldManager: this.fieldManager,
    };
    return (await (ref.namespaced
      ? this.custom.createNamespacedCustomObject({ ...base, namespace: obj.metadata!.namespace! })
      : this.custom.createClusterCustomObject(base))) as T;
  }

  /** A merge patch of the main resource (spec, metadata); conditional when it carries a resourceVersion. */
  async patchCustom<T extends CustomObject>(
    ref: ResourceRef,
    name: string,
    namespace: string | undefined,
    patch: Record<string, unknown>,
  ): Promise<T> {
    const base = {
      group: ref.group,
      version: ref.version,
      plural: ref.plural,
      name,
      body: patch,
      fieldManager: this.fieldManager,
    };
    return (await (ref.namespaced
      ? this.custom.patchNamespacedCustomObject({ ...base, namespace: namespace! }, mergePatchOptions)
      : this.custom.patchClusterCustomObject(base, mergePatchOptions))) as T;
  }

  /**
   * Writes status through the status subresource as a merge patch. With `resourceVersion` the write
   * is an optimistic-lock transaction: it fails with 409 if the object changed since it was read.
   */
  async patchCustomStatus<T extends CustomObject>(
    ref: ResourceRef,
    name: string,
    namespace: string | undefined,
    status: Record<string, unknown>,
    resourceVersion?: string,
  ): Promise<T> {
    const body: Record<string, unknown> = { status };
    if (resourceVersion) body.metadata = { resourceVersion };
    const base = {
      group: ref.group,
      version: ref.version,
      plural: ref.plural,
      name,
      body,
      fieldManager: this.fieldManager,
    };
    return (await (ref.namespaced
      ? this.custom.patchNamespacedCustomObjectStatus({ ...base, namespace: namespace! }, mergePatchOptions)
      : this.custom.patchClusterCustomObjectStatus(base, mergePatchOptions))) as T;
  }

  async deleteCustom(ref: ResourceRef, name: string, namespace?: string): Promise<void> {
    const base = { group: ref.group, version: ref.version, plural: ref.plural, name };
    await (ref.namespaced
      ? this.custom.deleteNamespacedCustomObject({ ...base, namespace: namespace! })
      : this.custom.deleteClusterCustomObject(base));
  }
}
