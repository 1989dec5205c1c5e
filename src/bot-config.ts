/**
 * Configuration of the Slack bot and the queue worker (`npm start`), validated in one place like
 * the engine's (src/config.ts): one clear message per problem, secrets never echoed.
 */
import { z } from 'zod';
import type { Env } from './config.js';
import { ConfigError } from './errors.js';

const SLACK_ID = /^[A-Z0-9]{2,20}$/;

const idList = (what: string, prefixes: string) =>
  z
    .string()
    .default('')
    .transform((value) =>
      value
        .split(',')
        .map((id) => id.trim())
        .filter(Boolean),
    )
    .refine((ids) => ids.every((id) => SLACK_ID.test(id) && prefixes.includes(id[0] ?? '')), {
      message: `must be a comma-separated list of Slack ${what} ids (starting with ${[...prefixes].join(' or ')})`,
    });

const positiveInt = (what: string) =>
  z
    .string()
    .regex(/^\d+$/, { message: `must be a whole number of ${what}` })
    .transform(Number)
    .refine((n) => n > 0, { message: `must be more than 0 ${what}` });

const boolean = z
  .enum(['true', 'false', '1', '0', 'yes', 'no'], { message: 'must be true or false' })
  .transform((value) => value === 'true' || value === '1' || value === 'yes');

const schema = z
  .object({
    ROLE: z.enum(['all', 'bot', 'worker'], { message: 'must be all, bot or worker' }).default('all'),
    LAB: boolean.default(false),
    PORT: positiveInt('port').default(3000),
    REDIS_URL: z
      .string()
      .default('redis://127.0.0.1:6379')
      .refine((value) => /^rediss?:\/\//.test(value), { message: 'must be a redis:// or rediss:// URL' }),
    QUEUE_PREFIX: z
      .string()
      .regex(/^[A-Za-z0-9_-]{1,32}$/, { message: 'must be letters, digits, - or _ (at most 32)' })
      .default('crb'),
    SLACK_BOT_TOKEN: z
      .string({ message: 'is required (the bot token, xoxb-…)' })
      .refine((t) => t.startsWith('xoxb-'), { message: 'must be a bot token starting with xoxb-' }),
    SLACK_SIGNING_SECRET: z.string().min(1).optional(),
    SLACK_APP_TOKEN: z
      .string()
      .refine((t) => t.startsWith('xapp-'), { message: 'must be an app-level token starting with xapp-' })
      .optional(),
    SLACK_API_URL: z
      .string()
      .refine((value) => /^https?:\/\/.+\/$/.test(value), { message: 'must be an http(s) URL ending in /' })
      .optional(),
    ALLOWED_CHANNEL_IDS: idList('channel', 'CGD'),
    REQUESTER_USER_IDS: idList('user', 'UW'),
    REQUESTER_USERGROUP_IDS: idList('user group', 'S'),
    APPROVER_USER_IDS: idList('user', 'UW'),
    APPROVER_USERGROUP_IDS: idList('user group', 'S'),
    APPROVAL_TTL_SECONDS: positiveInt('seconds').default(900),
    WORKER_CONCURRENCY: positiveInt('runs').default(4),
    LOCK_TTL_SECONDS: positiveInt('seconds').default(60),
    STALLED_INTERVAL_SECONDS: positiveInt('seconds').default(30),
    JOB_RETENTION_DAYS: positiveInt('days').default(30),
    SHUTDOWN_GRACE_SECONDS: positiveInt('seconds').default(25),
    SLACK_RETRY_SECONDS: positiveInt('seconds').default(600),
    STALL_ALARM_SECONDS: positiveInt('seconds').default(1200),
    METRICS_TOKEN: z
      .string()
      .min(16, { message: 'must be at least 16 characters (a random bearer token for /metrics)' })
      .optional(),
  })
  .superRefine((env, ctx) => {
    if (env.ROLE !== 'worker' && !env.SLACK_SIGNING_SECRET && !env.SLACK_APP_TOKEN) {
      ctx.addIssue({
        code: 'custom',
        path: ['SLACK_SIGNING_SECRET'],
        message:
          'or SLACK_APP_TOKEN is required: the signing secret for HTTP mode, or an app token for Socket Mode',
      });
    }
    if (env.ROLE !== 'worker' && env.REQUESTER_USER_IDS.length + env.REQUESTER_USERGROUP_IDS.length === 0) {
      ctx.addIssue({
        code: 'custom',
        path: ['REQUESTER_USER_IDS'],
        message: 'or REQUESTER_USERGROUP_IDS must name who may request a reboot (nobody can otherwise)',
      });
    }
    if (env.ROLE !== 'worker' && env.APPROVER_USER_IDS.length + env.APPROVER_USERGROUP_IDS.length === 0) {
      ctx.addIssue({
        code: 'custom',
        path: ['APPROVER_USER_IDS'],
        message: 'or APPROVER_USERGROUP_IDS must name who may approve a reboot (nobody can otherwise)',
      });
    }
  });

export interface BotConfig {
  role: 'all' | 'bot' | 'worker';
  lab: boolean;
  port: number;
  redisUrl: string;
  queuePrefix: string;
  slack: {
    botToken: string;
    signingSecret?: string;
    appToken?: string;
    apiUrl?: string;
    /** How long a Slack update keeps being retried during a Slack outage before it is dropped. */
    retryMs: number;
  };
  access: {
    allowedChannelIds: string[];
    requesterUserIds: string[];
    requesterUsergroupIds: string[];
    approverUserIds: string[];
    approverUsergroupIds: string[];
  };
  approvalTtlMs: number;
  workerConcurrency: number;
  lockTtlMs: number;
  stalledIntervalMs: number;
  jobRetentionMs: number;
  shutdownGraceMs: number;
  /** A run without progress for this long gets one alert in its thread. */
  stallAlarmMs: number;
  /** When set, `/metrics` asks for `Authorization: Bearer <token>`. */
  metricsToken?: string;
}

export function loadBotConfig(env: Env): BotConfig {
  const present = Object.fromEntries(Object.entries(env).filter(([, v]) => v !== undefined && v !== ''));
  const result = schema.safeParse(present);
  if (!result.success) {
    throw new ConfigError([
      ...new Set(
        result.error.issues.map((issue) => `${String(issue.path[0] ?? 'configuration')} ${issue.message}`),
      ),
    ]);
  }
  const e = result.data;
  return {
    role: e.ROLE,
    lab: e.LAB,
    port: e.PORT,
    redisUrl: e.REDIS_URL,
    queuePrefix: e.QUEUE_PREFIX,
    slack: {
      botToken: e.SLACK_BOT_TOKEN,
      signingSecret: e.SLACK_SIGNING_SECRET,
      appToken: e.SLACK_APP_TOKEN,
      apiUrl: e.SLACK_API_URL,
      retryMs: e.SLACK_RETRY_SECONDS * 1000,
    },
    access: {
      allowedChannelIds: e.ALLOWED_CHANNEL_IDS,
      requesterUserIds: e.REQUESTER_USER_IDS,
      requesterUsergroupIds: e.REQUESTER_USERGROUP_IDS,
      approverUserIds: e.APPROVER_USER_IDS,
      approverUsergroupIds: e.APPROVER_USERGROUP_IDS,
    },
    approvalTtlMs: e.APPROVAL_TTL_SECONDS * 1000,
    workerConcurrency: e.WORKER_CONCURRENCY,
    lockTtlMs: e.LOCK_TTL_SECONDS * 1000,
    stalledIntervalMs: e.STALLED_INTERVAL_SECONDS * 1000,
    jobRetentionMs: e.JOB_RETENTION_DAYS * 86_400_000,
    shutdownGraceMs: e.SHUTDOWN_GRACE_SECONDS * 1000,
    stallAlarmMs: e.STALL_ALARM_SECONDS * 1000,
    ...(e.METRICS_TOKEN ? { metricsToken: e.METRICS_TOKEN } : {}),
  };
}
