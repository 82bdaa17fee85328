// The client-side QPS limit of client-go's rest.Config (QPS, Burst): every API request the
// operator makes through clients built from this KubeConfig first takes a token from one bucket.
// The generated clients of @kubernetes/client-node 2 take middleware in their configuration;
// KubeConfig.makeApiClient builds that configuration, so overriding it covers every client the
// KubeClient and the informers' list calls make (watches are long-lived streams and are not limited).
import * as k8s from "@kubernetes/client-node";
import { TokenBucket } from "./rate-limiter.ts";

export class RateLimitedKubeConfig extends k8s.KubeConfig {
  readonly bucket: TokenBucket;

  constructor(source: k8s.KubeConfig, bucket: TokenBucket) {
    super();
    this.bucket = bucket;
    this.loadFromOptions({
      clusters: source.clusters,
      users: source.users,
      contexts: source.contexts,
      currentContext: source.currentContext,
    });
  }

  override makeApiClient<T extends k8s.ApiType>(apiClientType: k8s.ApiConstructor<T>): T {
    const cluster = this.getCurrentCluster();
    if (!cluster) throw new Error("no active cluster in the kubeconfig");
    const bucket = this.bucket;
    const configuration = k8s.createConfiguration({
      baseServer: new k8s.ServerConfiguration(cluster.server, {}),
      authMethods: { default: this },
      middleware: [k8s.setHeaderMiddleware("User-Agent", "understudy-operator")],
      promiseMiddleware: [
        {
          pre: async (request) => {
            await bucket.take();
            return request;
          },
          post: async (response) => response,
        },
      ],
    });
    return new apiClientType(configuration);
  }
}

/** A KubeConfig whose API clients share a limit of `qps` requests per second, bursts of `burst`. */
export function rateLimitedKubeConfig(kc: k8s.KubeConfig, qps: number, burst: number): RateLimitedKubeConfig {
  return new RateLimitedKubeConfig(kc, new TokenBucket(qps, burst));
}
