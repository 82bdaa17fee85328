// The client-side QPS limit of client-go's rest.Config (QPS, Burst): every API request the
// operator makes through clients built from this KubeConfig first takes a token from one bucket.
// The generated clients of @kubernetes/client-node 2 take middleware in their configuration;
// KubeConfig.makeApiClient builds that configuration, so overriding it covers every client the
// KubeClient and the informers' list calls make (watches are long-lived streams and are not limited).
// Requests made inside urgent() wait in the bucket's urgent lane: the async context carries the lane
// from the caller (a failover step) to the middleware, whichever client the request goes through.
import * as k8s from "@kubernetes/client-node";
import { AsyncLocalStorage } from "node:async_hooks";
import { TokenBucket, type Lane } from "./rate-limiter.ts";

export class RateLimitedKubeConfig extends k8s.KubeConfig {
  readonly bucket: TokenBucket;
  /** Whether urgent() has any effect (settings: --priority-lanes). */
  readonly lanes: boolean;
  private readonly lane = new AsyncLocalStorage<Lane>();

  constructor(source: k8s.KubeConfig, bucket: TokenBucket, options: { lanes?: boolean } = {}) {
    super();
    this.bucket = bucket;
    this.lanes = options.lanes ?? true;
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
    const lane = this.lane;
    const configuration = k8s.createConfiguration({
      baseServer: new k8s.ServerConfiguration(cluster.server, {}),
      authMethods: { default: this },
      middleware: [k8s.setHeaderMiddleware("User-Agent", "understudy-operator")],
      promiseMiddleware: [
        {
          pre: async (request) => {
            await bucket.take(lane.getStore() ?? "routine");
            return request;
          },
          post: async (response) => response,
        },
      ],
    });
    return new apiClientType(configuration);
  }

  /** Runs `work` with every API request it makes (directly or through callees) in the urgent lane. */
  urgent<T>(work: () => T): T {
    return this.lanes ? this.lane.run("urgent", work) : work();
  }

  /** Runs `work` in the routine lane even when called from urgent work (an Event about a failover step). */
  routine<T>(work: () => T): T {
    return this.lane.run("routine", work);
  }
}

/**
 * A KubeConfig whose API clients share a limit of `qps` requests per second, bursts of `burst`;
 * with `lanes`, requests made inside urgent() go before routine ones waiting, and a third of the
 * burst is kept for them: a failover's dozen requests in a row find tokens even while routine work
 * keeps the rest of the bucket empty.
 */
export function rateLimitedKubeConfig(
  kc: k8s.KubeConfig,
  qps: number,
  burst: number,
  lanes = true,
): RateLimitedKubeConfig {
  const reserve = lanes ? Math.floor(burst / 3) : 0;
  return new RateLimitedKubeConfig(kc, new TokenBucket(qps, burst, Date.now, reserve), { lanes });
}
