// The Manager (controller-runtime's manager.Manager): owns the API client, the shared informers,
// the controllers, leader election and the health/metrics server, and runs them in order —
// caches first (every replica keeps them warm), controllers only while leading — and stops them
// in the reverse order on SIGTERM.
import type * as k8s from "@kubernetes/client-node";
import { KubeClient } from "../kube/client.ts";
import { loadKubeConfig } from "../kube/config.ts";
import { errorMessage } from "../kube/errors.ts";
import { Informer } from "../kube/informer.ts";
import { apiVersionOf, type ResourceRef } from "../kube/resources.ts";
import { rateLimitedKubeConfig, type RateLimitedKubeConfig } from "./client-rate-limit.ts";
import { Controller, type ControllerOptions } from "./controller.ts";
import { EventRecorder } from "./events.ts";
import { LeaderElector } from "./leader-election.ts";
import { createLogger, type Logger } from "./logger.ts";
import { OperatorMetrics } from "./metrics.ts";
import { HealthServer, type ReadinessChecks } from "./server.ts";
import { controllerEnabled, type Settings } from "./settings.ts";

export interface ManagerOptions {
  settings: Settings;
  /** Defaults to the kubeconfig the settings name (or $KUBECONFIG, in-cluster, ~/.kube/config). */
  kubeConfig?: k8s.KubeConfig;
  log?: Logger;
  metrics?: OperatorMetrics;
  /** How the process ends when leadership is lost or a signal's shutdown finishes. */
  exit?: (code: number) => void;
}

export interface InformerSelector {
  namespace?: string;
  labelSelector?: string;
  fieldSelector?: string;
}

/** A controller as registered with the manager: logs, metrics and concurrency come from it. */
export type ManagedControllerOptions = Omit<ControllerOptions, "log" | "metrics">;

export class Manager {
  readonly settings: Settings;
  readonly kubeConfig: RateLimitedKubeConfig;
  readonly client: KubeClient;
  /**
   * The leader elector's own client, with a bucket of its own (as controller-runtime builds the
   * leader-election client apart): a renewal never waits behind the controllers' requests.
   */
  private readonly electionClient: KubeClient;
  readonly log: Logger;
  readonly metrics: OperatorMetrics;
  readonly events: EventRecorder;
  private readonly exit: (code: number) => void;
  private readonly informers = new Map<string, Informer<k8s.KubernetesObject>>();
  private readonly controllers: Controller[] = [];
  private readonly server: HealthServer;
  private elector: LeaderElector | undefined;
  private state: "new" | "starting" | "running" | "stopping" = "new";
  private synced = false;
  private stopping: Promise<number> | undefined;

  constructor(options: ManagerOptions) {
    const { settings } = options;
    this.settings = settings;
    this.log = options.log ?? createLogger({ level: settings.logLevel });
    this.metrics = options.metrics ?? new OperatorMetrics();
    this.exit = options.exit ?? ((code) => process.exit(code));
    const kubeConfig = options.kubeConfig ?? loadKubeConfig(settings.kubeconfig);
    this.kubeConfig = rateLimitedKubeConfig(
      kubeConfig,
      settings.client.qps,
      settings.client.burst,
      settings.client.priorityLanes,
    );
    this.client = new KubeClient(this.kubeConfig, "understudy-operator");
    this.electionClient = new KubeClient(
      rateLimitedKubeConfig(kubeConfig, settings.client.qps, settings.client.burst, false),
      "understudy-operator",
    );
    this.events = new EventRecorder({
      client: this.client,
      instance: settings.leaderElection.identity,
      log: this.log.child({ component: "events" }),
      detach: (write) => this.kubeConfig.routine(write),
    });
    this.server = new HealthServer({
      host: settings.metrics.host,
      port: settings.metrics.port,
      metrics: this.metrics,
      readiness: () => this.readiness(),
      log: this.log,
    });
  }

  /**
   * The shared informer of a resource (in a namespace, with selectors): every caller asking for the
   * same one gets the same cache and watch. Informers asked for after start() start at once.
   * `transform` shapes every object before it is cached (see InformerOptions.transform); a shared
   * cache has one shape, so every caller of one informer must pass the same transform.
   */
  informer<T extends k8s.KubernetesObject>(
    resource: ResourceRef,
    selector: InformerSelector = {},
    transform?: (object: T) => T,
  ): Informer<T> {
    const key = [
      apiVersionOf(resource),
      resource.plural,
      selector.namespace ?? "",
      selector.labelSelector ?? "",
      selector.fieldSelector ?? "",
    ].join("|");
    let informer = this.informers.get(key);
    if (informer && informer.transform !== transform)
      throw new Error(`the ${resource.plural} informer (${key}) is already shared with another transform`);
    if (!informer) {
      const log = this.log.child({ informer: resource.plural, namespace: selector.namespace });
      informer = new Informer<k8s.KubernetesObject>(this.kubeConfig, {
        resource,
        ...selector,
        resyncMs: this.settings.resyncPeriodMs,
        transform: transform as ((object: k8s.KubernetesObject) => k8s.KubernetesObject) | undefined,
        onError: (err) => log.warn({ error: errorMessage(err) }, "informer error; it retries"),
      });
      this.informers.set(key, informer);
      if (this.state !== "new") void informer.start();
    }
    return informer as unknown as Informer<T>;
  }

  /**
   * Runs `work` with its API requests in the urgent lane of the client-side rate limit: they take
   * the next tokens before any routine request waiting (no effect with --no-priority-lanes).
   */
  urgent<T>(work: () => T): T {
    return this.kubeConfig.urgent(work);
  }

  /**
   * Creates a controller with the manager's logger, metrics and configured concurrency. One the
   * settings disable is still returned (its watches are harmless) but never started.
   */
  controller(options: ManagedControllerOptions): Controller {
    const enabled = controllerEnabled(this.settings, options.name);
    const controller = new Controller({
      ...options,
      ...(this.settings.client.priorityLanes ? {} : { urgent: undefined }),
      concurrency:
        this.settings.concurrency.byController[options.name] ??
        options.concurrency ??
        this.settings.concurrency.default,
      log: this.log,
      metrics: enabled ? this.metrics.controller : undefined,
    });
    if (!enabled) {
      this.log.info({ controller: options.name }, "controller disabled by settings");
      return controller;
    }
    return this.add(controller);
  }

  /** Registers a controller built elsewhere; it starts while this replica leads. */
  add(controller: Controller): Controller {
    if (this.state !== "new")
      throw new Error(`controller ${controller.name} registered after the manager started`);
    if (this.controllers.some((c) => c.name === controller.name))
      throw new Error(`a controller named ${controller.name} is already registered`);
    this.controllers.push(controller);
    return controller;
  }

  isLeader(): boolean {
    return this.settings.leaderElection.enabled
      ? (this.elector?.isLeader() ?? false)
      : this.state === "running";
  }

  /** Where the health and metrics server listens, once started. */
  address(): { host: string; port: number } | undefined {
    const a = this.server.address();
    return a && { host: a.address, port: a.port };
  }

  /**
   * Serves health and metrics, starts every informer and waits for their first list, then starts
   * the controllers — at once, or when this replica becomes the leader.
   */
  async start(): Promise<void> {
    if (this.state !== "new") throw new Error("the manager was already started");
    this.state = "starting";
    await this.server.listen();
    const informers = [...this.informers.values()];
    this.log.info(
      { informers: informers.length, controllers: this.controllers.length },
      "starting informers",
    );
    await Promise.all(informers.map((informer) => informer.start()));
    this.synced = true;
    if (this.stopping) return;
    this.state = "running";
    this.log.info("informers synced");

    const le = this.settings.leaderElection;
    if (!le.enabled) {
      this.startControllers();
      return;
    }
    this.elector = new LeaderElector({
      client: this.electionClient,
      namespace: le.namespace,
      name: le.leaseName,
      identity: le.identity,
      leaseDurationMs: le.leaseDurationMs,
      renewDeadlineMs: le.renewDeadlineMs,
      retryPeriodMs: le.retryPeriodMs,
      log: this.log,
      onStartedLeading: () => this.startControllers(),
      onStoppedLeading: () => this.leadershipEnded(),
      onNewLeader: (leader) => this.log.info({ leader }, "observed a new leader"),
    });
    void this.elector.run();
  }

  /**
   * Graceful shutdown: stop taking work, let reconciles in flight finish (bounded by the shutdown
   * timeout), release the lease so a standby takes over at once, stop the informers, close the
   * server. Resolves the exit code. The lease is released only when every reconcile finished:
   * otherwise a standby could start while this replica still writes, so it waits out the lease.
   */
  shutdown(reason = "shutdown requested"): Promise<number> {
    this.stopping ??= (async () => {
      this.state = "stopping";
      this.log.info({ reason }, "shutting down");
      const finished = await Promise.all(
        this.controllers.map((c) => c.stop(this.settings.shutdownTimeoutMs)),
      );
      const clean = finished.every(Boolean);
      await this.elector?.stop({ release: clean });
      for (const informer of this.informers.values()) informer.stop();
      await this.server.close();
      this.log.info({ clean }, "shut down");
      return 0;
    })();
    return this.stopping;
  }

  /** SIGTERM and SIGINT shut down gracefully and exit; a second signal exits at once. */
  handleSignals(): void {
    const onSignal = (signal: NodeJS.Signals) => {
      if (this.stopping) {
        this.log.warn({ signal }, "second signal: exiting without waiting");
        this.exit(1);
        return;
      }
      void this.shutdown(`received ${signal}`).then((code) => this.exit(code));
    };
    process.on("SIGTERM", onSignal);
    process.on("SIGINT", onSignal);
  }

  private startControllers(): void {
    if (this.stopping) return;
    this.log.info({ controllers: this.controllers.map((c) => c.name) }, "starting controllers");
    for (const controller of this.controllers) controller.start();
  }

  /** Leadership ended. During shutdown that is the plan; otherwise another replica may already lead. */
  private leadershipEnded(): void {
    if (this.stopping) return;
    this.log.fatal("leadership lost: exiting so that Kubernetes restarts this replica as a standby");
    this.log.flush();
    this.exit(1);
  }

  private readiness(): ReadinessChecks {
    const checks: ReadinessChecks = {
      informers: this.synced,
      "shutdown-not-started": this.stopping === undefined,
    };
    if (this.settings.leaderElection.enabled) checks["leader-election"] = this.elector?.healthy() ?? false;
    return checks;
  }
}
