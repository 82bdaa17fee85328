import * as k8s from "@kubernetes/client-node";
import { readFileSync, readdirSync } from "node:fs";
import { join } from "node:path";
import { eventually, testKubeConfig } from "./kube.ts";

const crdsDir = join(import.meta.dirname, "../../crds");

/** Applies crds/ to the test cluster (server-side apply) and waits until every CRD is Established. */
export async function installCrds(kc: k8s.KubeConfig = testKubeConfig()): Promise<void> {
  const objects = k8s.KubernetesObjectApi.makeApiClient(kc);
  const extensions = kc.makeApiClient(k8s.ApiextensionsV1Api);
  for (const file of readdirSync(crdsDir).filter((f) => f.endsWith(".yaml"))) {
    // loadYaml builds typed objects; a plain object would lose its x-kubernetes-* keys in serialization.
    const crd = k8s.loadYaml<k8s.V1CustomResourceDefinition>(readFileSync(join(crdsDir, file), "utf8"));
    await objects.patch(
      crd,
      undefined,
      undefined,
      "understudy-tests",
      true,
      k8s.PatchStrategy.ServerSideApply,
    );
    await eventually(`CRD ${crd.metadata!.name} Established`, async () => {
      const current = await extensions.readCustomResourceDefinition({ name: crd.metadata!.name! });
      return current.status?.conditions?.some((c) => c.type === "Established" && c.status === "True");
    });
  }
}
