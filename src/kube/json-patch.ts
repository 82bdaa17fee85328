// JSON Patch (RFC 6902) of any object, built-in or custom. KubernetesObjectApi.patch sends the
// object it is given as the body, so it cannot carry a patch document (an array); this subclass
// reuses its discovery of the object's URL and its request pipeline (auth, middleware such as the
// client rate limit) and sends the operations instead.
import * as k8s from "@kubernetes/client-node";

export type JsonPatchOperation =
  | { op: "add" | "replace" | "test"; path: string; value: unknown }
  | { op: "remove"; path: string }
  | { op: "move" | "copy"; from: string; path: string };

/** A key as one segment of a JSON Pointer (RFC 6901): "~" and "/" escaped. */
export const pointerSegment = (key: string) => key.replace(/~/g, "~0").replace(/\//g, "~1");

/** What names an object: enough to find its URL. */
export interface ObjectHeader {
  apiVersion: string;
  kind: string;
  metadata: { name: string; namespace?: string };
}

export class JsonPatchObjectApi extends k8s.KubernetesObjectApi {
  static forConfig(kc: k8s.KubeConfig): JsonPatchObjectApi {
    const api = kc.makeApiClient(JsonPatchObjectApi);
    api.setDefaultNamespace(kc);
    return api;
  }

  async jsonPatch<T extends k8s.KubernetesObject>(
    target: ObjectHeader,
    operations: readonly JsonPatchOperation[],
    fieldManager?: string,
  ): Promise<T> {
    const spec = { apiVersion: target.apiVersion, kind: target.kind, metadata: { ...target.metadata } };
    const path = await this.specUriPath(spec, "patch");
    const request = this.configuration.baseServer.makeRequestContext(path, k8s.HttpMethod.PATCH);
    request.setHeaderParam("Accept", "application/json, */*;q=0.8");
    request.setHeaderParam("Content-Type", k8s.PatchStrategy.JsonPatch);
    if (fieldManager) request.setQueryParam("fieldManager", fieldManager);
    request.setBody(JSON.stringify(operations));
    return this.requestPromise<T>(request);
  }
}
