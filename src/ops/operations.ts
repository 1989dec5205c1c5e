/**
 * Everything an operator sees of one process, wired once for `npm start`: the metrics registry and
 * its sources, `/healthz`, `/readyz` and `/metrics`, the run observer (structured run logs, metrics,
 * stall alarm) and, where Bolt's HTTP receiver does not listen, a small server on PORT for them.
 */
import type { Redis } from 'ioredis';
import type { BotConfig } from '../bot-config.js';
import type { Logger } from '../log.js';
import { registerProgressGauge } from '../metrics/progress-gauge.js';
import { type RedisGauges, registerRedisGauges } from '../metrics/redis-gauges.js';
import { createMetrics, type Metrics } from '../metrics/registry.js';
import { slackCallMetrics } from '../metrics/slack-calls.js';
import type { RunState } from '../queue/contracts.js';
import type { RunObserver } from '../queue/worker.js';
import type { SlackCallObserver, SlackWriter } from '../slack/slack-writer.js';
import { ActiveRuns } from './active-runs.js';
import { type OpsRoute, opsRoutes } from './http-routes.js';
import { type OpsServer, startOpsServer } from './ops-server.js';
import { checkReadiness, type ReadinessCheck, redisCheck, slackCheck, workerCheck } from './readiness.js';
import { createRunObserver } from './run-observer.js';
import { allOf, SlackApiHealth } from './slack-health.js';
import { StallAlarm } from './stall-alarm.js';

export interface OperationsDeps {
  config: BotConfig;
  /** The service's client connection (fails fast while Redis is down). */
  redis: Redis;
  runStates: { statesOfRecent(limit: number): Promise<RunState[]> };
  logger: Logger;
}

export interface Operations {
  readonly metrics: Metrics;
  /** For every thread writer of the process. */
  readonly slackObserver: SlackCallObserver;
  /** For Bolt's HTTP receiver. */
  readonly routes: readonly OpsRoute[];
  /** The bot, once created: its receiver is part of readiness. */
  attachBot(bot: { receiverStatus(): { ok: boolean; detail: string } }): void;
  /** The worker, once started: it must be running to be ready. */
  attachWorker(worker: { isRunning(): boolean }): void;
  /** The worker's observer; its stall alarms are posted through `writer`. */
  runObserver(writer: Pick<SlackWriter, 'channel'>): RunObserver;
  /** Serves the routes on a server of their own (Socket Mode, ROLE=worker); resolves with its port. */
  serve(port: number): Promise<number>;
  stop(): Promise<void>;
}

export function createOperations(deps: OperationsDeps): Operations {
  const { config, redis, logger } = deps;
  const metrics = createMetrics();
  const activeRuns = new ActiveRuns();
  const slackHealth = new SlackApiHealth();
  registerProgressGauge(metrics, activeRuns);
  const gauges: RedisGauges = registerRedisGauges(metrics, {
    redis,
    prefix: config.queuePrefix,
    runStates: deps.runStates,
    logger,
  });
  let bot: { receiverStatus(): { ok: boolean; detail: string } } | undefined;
  let worker: { isRunning(): boolean } | undefined;
  let stallAlarm: StallAlarm | undefined;
  let server: OpsServer | undefined;

  const checks: ReadinessCheck[] = [
    redisCheck(redis),
    slackCheck({
      ...(config.role !== 'worker'
        ? { receiver: () => bot?.receiverStatus() ?? { ok: false, detail: 'not started' } }
        : {}),
      webApi: () => slackHealth.status(),
    }),
    ...(config.role !== 'bot' ? [workerCheck(() => worker)] : []),
  ];
  const routes = opsRoutes({
    metrics,
    readiness: () => checkReadiness(checks),
    ...(config.metricsToken ? { metricsToken: config.metricsToken } : {}),
    logger,
  });

  return {
    metrics,
    slackObserver: allOf(slackCallMetrics(metrics), slackHealth),
    routes,
    attachBot: (attached) => {
      bot = attached;
    },
    attachWorker: (attached) => {
      worker = attached;
    },
    runObserver: (writer) => {
      stallAlarm ??= new StallAlarm({
        activeRuns,
        thresholdMs: config.stallAlarmMs,
        writer,
        logger,
        metrics,
      });
      stallAlarm.start();
      return createRunObserver({ activeRuns, logger, metrics, stallAlarm });
    },
    serve: async (port) => {
      server ??= await startOpsServer({ port, routes });
      return server.port;
    },
    stop: async () => {
      stallAlarm?.stop();
      await server?.close();
      await gauges.close().catch(() => undefined);
    },
  };
}
