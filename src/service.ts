/**
 * `npm start`: the Slack bot, the queue worker, or both (ROLE), wired to Redis and the engine.
 * With LAB=true a built-in lab stands in for CloudStack and the pool, so a team can try the whole
 * Slack flow in its own workspace without real infrastructure.
 */
import { RedisAuditLog } from './audit/audit-log.js';
import { createPlanFunction } from './bot/plan.js';
import { type BotConfig, loadBotConfig } from './bot-config.js';
import { type Config, type Env, loadConfig } from './config.js';
import { createLogger, type Logger } from './log.js';
import { createOperations } from './ops/operations.js';
import { createRedis } from './queue/redis.js';
import { RedisCheckpointReader } from './queue/redis-checkpoint-store.js';
import { BullRunQueue } from './queue/run-queue.js';
import { RedisRunStore } from './queue/run-store.js';
import { startRunWorker } from './queue/worker.js';
import { createSlackApp } from './slack/app.js';
import { createSlackRunReporter } from './slack/run-reporter.js';
import { chatApiOf, createSlackWebClient, SlackWriter } from './slack/slack-writer.js';

export interface RunningService {
  readonly botConfig: BotConfig;
  readonly engineConfig: Config;
  /** Where /healthz, /readyz and /metrics are served (and Slack's requests, in HTTP mode). */
  readonly port?: number;
  stop(): Promise<void>;
}

/** Starts a lab and returns the environment pointing the engine at it, and how to stop it. */
export type LabStarter = (logger: Logger) => Promise<{ env: Env; stop(): Promise<void> }>;

export async function startService(
  env: Env,
  options: { startLab?: LabStarter; logger?: Logger } = {},
): Promise<RunningService> {
  const botConfig = loadBotConfig(env);
  let engineEnv = env;
  let stopLab: (() => Promise<void>) | undefined;
  const bootLogger = options.logger ?? createLogger({ level: env.LOG_LEVEL ?? 'info' });
  if (botConfig.lab) {
    if (!options.startLab) throw new Error('LAB=true needs the lab, which this build does not include');
    const lab = await options.startLab(bootLogger);
    engineEnv = { ...env, ...lab.env };
    stopLab = lab.stop;
  }
  const engineConfig = loadConfig(engineEnv);
  const logger = options.logger ?? createLogger({ level: engineConfig.logLevel });
  const prefix = botConfig.queuePrefix;
  const redis = createRedis(botConfig.redisUrl, 'client');
  const runStore = new RedisRunStore(redis, prefix);
  const audit = new RedisAuditLog(redis, prefix);
  const stops: Array<() => Promise<void>> = [];
  const ops = createOperations({ config: botConfig, redis, runStates: runStore, logger });

  try {
    let writer: SlackWriter | undefined;
    let port: number | undefined;
    const httpBot = botConfig.role !== 'worker' && !botConfig.slack.appToken;
    // Bolt's HTTP receiver serves the operations routes itself; otherwise they get a server on PORT,
    // started first so that probes are answered while the rest starts.
    if (!httpBot) port = await ops.serve(botConfig.port);
    if (botConfig.role !== 'worker') {
      const queue = new BullRunQueue({ connection: redis, prefix, retentionMs: botConfig.jobRetentionMs });
      const plan = createPlanFunction(engineConfig, logger);
      const checkpoints = new RedisCheckpointReader(redis, prefix);
      const bot = createSlackApp({
        config: botConfig,
        runStore,
        audit,
        queue,
        plan: (request) =>
          plan({
            cluster: request.cluster,
            exec: request.exec,
            threads: request.options.threads,
            ignoreHosts: request.options.ignoreHosts,
            restorePlacement: request.options.restorePlacement,
          }),
        clearCheckpoint: async (cluster) => {
          if (!(await checkpoints.clear(cluster))) {
            throw new Error(`a worker still holds ${cluster}: its checkpoint is in use`);
          }
        },
        logger,
        slackObserver: ops.slackObserver,
        httpRoutes: ops.routes,
      });
      ops.attachBot(bot);
      writer = bot.writer;
      const started = await bot.start();
      if (httpBot) port = started.port;
      stops.push(
        () => bot.stop(5_000),
        () => queue.close(),
      );
      logger.info({ port, socketMode: Boolean(botConfig.slack.appToken) }, 'Slack bot started');
    }
    if (botConfig.role !== 'bot') {
      const workerWriter =
        writer ??
        new SlackWriter({
          api: chatApiOf(createSlackWebClient(botConfig.slack, { logger })),
          retryMs: botConfig.slack.retryMs,
          logger,
          observer: ops.slackObserver,
        });
      const worker = await startRunWorker({
        redisUrl: botConfig.redisUrl,
        prefix,
        concurrency: botConfig.workerConcurrency,
        lockTtlMs: botConfig.lockTtlMs,
        stalledIntervalMs: botConfig.stalledIntervalMs,
        shutdownGraceMs: botConfig.shutdownGraceMs,
        jobRetentionMs: botConfig.jobRetentionMs,
        runStore,
        audit,
        reporterFor: createSlackRunReporter({ writer: workerWriter, logger }),
        logger,
        env: engineEnv,
        observer: ops.runObserver(workerWriter),
      });
      ops.attachWorker(worker);
      // The worker goes first on shutdown: its runs reach a safe point while Slack still gets news.
      stops.unshift(() => worker.close());
      logger.info({ worker: worker.id, concurrency: botConfig.workerConcurrency }, 'worker started');
    }
    if (stopLab) stops.push(stopLab);
    return {
      botConfig,
      engineConfig,
      port,
      stop: async () => {
        for (const stop of stops)
          await stop().catch((error: unknown) => logger.error({ err: error }, 'stopping failed'));
        await ops.stop();
        redis.disconnect();
      },
    };
  } catch (error) {
    for (const stop of stops) await stop().catch(() => undefined);
    await ops.stop().catch(() => undefined);
    redis.disconnect();
    await stopLab?.();
    throw error;
  }
}
