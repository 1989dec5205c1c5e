/**
 * The one place configuration is read and validated. Takes the environment as a parameter, so tests
 * and the lab pass their own. Every problem gets its own message naming the variable; secret values
 * are never echoed back.
 */
import { existsSync, readFileSync } from 'node:fs';
import { parseEnv } from 'node:util';
import { z } from 'zod';
import { ConfigError } from './errors.js';

export type Env = Record<string, string | undefined>;

const SECRET_VARIABLES = new Set([
  'CLOUDSTACK_SECRET_KEY',
  'CLOUDSTACK_API_KEY',
  'XAPI_PASSWORD',
  'SSH_PRIVATE_KEY_PASSPHRASE',
  'SLACK_BOT_TOKEN',
  'SLACK_SIGNING_SECRET',
  'SLACK_APP_TOKEN',
  'REDIS_URL',
  'METRICS_TOKEN',
]);

const boolean = z
  .enum(['true', 'false', '1', '0', 'yes', 'no'], { message: 'must be true or false' })
  .transform((value) => value === 'true' || value === '1' || value === 'yes');

const positiveInt = (what: string) =>
  z
    .string()
    .regex(/^\d+$/, { message: `must be a whole number of ${what}` })
    .transform(Number)
    .refine((n) => n > 0, { message: `must be more than 0 ${what}` });

const url = (example: string) =>
  z.string().refine(
    (value) => {
      try {
        const parsed = new URL(value);
        return parsed.protocol === 'http:' || parsed.protocol === 'https:';
      } catch {
        return false;
      }
    },
    { message: `must be an http(s) URL like ${example}` },
  );

const readableFile = z.string().refine((path) => existsSync(path), { message: 'file does not exist' });

const required = (message: string) => z.string({ message }).min(1, { message });

const schema = z
  .object({
    CLOUDSTACK_URL: required(
      'is required (the CloudStack API endpoint, e.g. https://cloud.example.com/client/api)',
    ).pipe(url('https://cloud.example.com/client/api')),
    CLOUDSTACK_API_KEY: required('is required (an API key of a CloudStack admin account)'),
    CLOUDSTACK_SECRET_KEY: required('is required (the secret key that goes with CLOUDSTACK_API_KEY)'),
    CLOUDSTACK_CA_FILE: readableFile.optional(),
    CLOUDSTACK_TLS_INSECURE: boolean.default(false),
    CLOUDSTACK_TIMEOUT_SECONDS: positiveInt('seconds').default(30),
    // updateCluster is synchronous: unmanaging a cluster blocks while CloudStack disconnects every host.
    CLOUDSTACK_UPDATE_TIMEOUT_SECONDS: positiveInt('seconds').default(300),

    XAPI_USERNAME: z.string().min(1).default('root'),
    XAPI_PASSWORD: required('is required (the XAPI password of XAPI_USERNAME on the pool)'),
    XAPI_PROTOCOL: z.enum(['https', 'http'], { message: 'must be https or http' }).default('https'),
    XAPI_PORT: positiveInt('port').optional(),
    XAPI_CA_FILE: readableFile.optional(),
    XAPI_TLS_INSECURE: boolean.default(false),
    XAPI_CALL_TIMEOUT_SECONDS: positiveInt('seconds').default(60),
    XAPI_LOGIN_TIMEOUT_SECONDS: positiveInt('seconds').default(900),

    SSH_USERNAME: z.string().min(1).default('root'),
    SSH_PRIVATE_KEY_FILE: required('is required (the private key the bot logs in to hosts with)').pipe(
      readableFile,
    ),
    SSH_PRIVATE_KEY_PASSPHRASE: z.string().optional(),
    SSH_PORT: positiveInt('port').default(22),
    SSH_KNOWN_HOSTS_FILE: required('is required (an OpenSSH known_hosts file listing every host key)').pipe(
      readableFile,
    ),
    SSH_TIMEOUT_SECONDS: positiveInt('seconds').default(20),

    HOST_REBOOT_TIMEOUT_SECONDS: positiveInt('seconds').default(1800),
    HOST_SHUTDOWN_TIMEOUT_SECONDS: positiveInt('seconds').default(600),
    MIGRATION_TIMEOUT_SECONDS: positiveInt('seconds').default(1800),
    CLOUDSTACK_WAIT_TIMEOUT_SECONDS: positiveInt('seconds').default(900),
    POLL_INTERVAL_MS: positiveInt('milliseconds').default(5000),
    ESTIMATE_MIGRATION_MBYTES_PER_SECOND: positiveInt('megabytes per second').default(1000),
    ESTIMATE_HOST_REBOOT_SECONDS: positiveInt('seconds').default(300),
    STATE_DIR: z.string().min(1).default('./state'),
    HOOKS_FILE: readableFile.optional(),

    LOG_LEVEL: z
      .enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'], {
        message: 'must be one of fatal, error, warn, info, debug, trace, silent',
      })
      .default('info'),
  })
  .superRefine((env, ctx) => {
    if (env.XAPI_CA_FILE && env.XAPI_TLS_INSECURE) {
      ctx.addIssue({
        code: 'custom',
        path: ['XAPI_TLS_INSECURE'],
        message: 'cannot be true together with XAPI_CA_FILE; choose one',
      });
    }
    if (env.CLOUDSTACK_CA_FILE && env.CLOUDSTACK_TLS_INSECURE) {
      ctx.addIssue({
        code: 'custom',
        path: ['CLOUDSTACK_TLS_INSECURE'],
        message: 'cannot be true together with CLOUDSTACK_CA_FILE; choose one',
      });
    }
  });

export interface Config {
  cloudstack: {
    url: string;
    apiKey: string;
    secretKey: string;
    caFile?: string;
    tlsInsecure: boolean;
    timeoutMs: number;
    /** For `updateCluster`, which blocks on the server while hosts are disconnected. */
    updateTimeoutMs: number;
  };
  xapi: {
    username: string;
    password: string;
    protocol: 'https' | 'http';
    port: number;
    caFile?: string;
    tlsInsecure: boolean;
    callTimeoutMs: number;
    loginTimeoutMs: number;
  };
  ssh: {
    username: string;
    privateKeyFile: string;
    passphrase?: string;
    port: number;
    knownHostsFile: string;
    timeoutMs: number;
  };
  timings: {
    hostRebootTimeoutMs: number;
    hostShutdownTimeoutMs: number;
    migrationTimeoutMs: number;
    cloudstackWaitTimeoutMs: number;
    pollIntervalMs: number;
  };
  /** Only for the estimated duration shown with a plan. */
  estimates: {
    migrationBytesPerSecond: number;
    hostRebootMs: number;
  };
  stateDir: string;
  hooksFile?: string;
  logLevel: 'fatal' | 'error' | 'warn' | 'info' | 'debug' | 'trace' | 'silent';
}

/** Validates `env` and returns the typed configuration, or throws one `ConfigError` listing every problem. */
export function loadConfig(env: Env): Config {
  const present = Object.fromEntries(
    Object.entries(env).filter(([, value]) => value !== undefined && value !== ''),
  );
  const result = schema.safeParse(present);
  if (!result.success) {
    const problems = result.error.issues.map((issue) => {
      const name = String(issue.path[0] ?? 'configuration');
      return `${name} ${issue.message}`;
    });
    throw new ConfigError([...new Set(problems)]);
  }
  const e = result.data;
  return {
    cloudstack: {
      url: e.CLOUDSTACK_URL,
      apiKey: e.CLOUDSTACK_API_KEY,
      secretKey: e.CLOUDSTACK_SECRET_KEY,
      caFile: e.CLOUDSTACK_CA_FILE,
      tlsInsecure: e.CLOUDSTACK_TLS_INSECURE,
      timeoutMs: e.CLOUDSTACK_TIMEOUT_SECONDS * 1000,
      updateTimeoutMs: e.CLOUDSTACK_UPDATE_TIMEOUT_SECONDS * 1000,
    },
    xapi: {
      username: e.XAPI_USERNAME,
      password: e.XAPI_PASSWORD,
      protocol: e.XAPI_PROTOCOL,
      port: e.XAPI_PORT ?? (e.XAPI_PROTOCOL === 'https' ? 443 : 80),
      caFile: e.XAPI_CA_FILE,
      tlsInsecure: e.XAPI_TLS_INSECURE,
      callTimeoutMs: e.XAPI_CALL_TIMEOUT_SECONDS * 1000,
      loginTimeoutMs: e.XAPI_LOGIN_TIMEOUT_SECONDS * 1000,
    },
    ssh: {
      username: e.SSH_USERNAME,
      privateKeyFile: e.SSH_PRIVATE_KEY_FILE,
      passphrase: e.SSH_PRIVATE_KEY_PASSPHRASE,
      port: e.SSH_PORT,
      knownHostsFile: e.SSH_KNOWN_HOSTS_FILE,
      timeoutMs: e.SSH_TIMEOUT_SECONDS * 1000,
    },
    timings: {
      hostRebootTimeoutMs: e.HOST_REBOOT_TIMEOUT_SECONDS * 1000,
      hostShutdownTimeoutMs: e.HOST_SHUTDOWN_TIMEOUT_SECONDS * 1000,
      migrationTimeoutMs: e.MIGRATION_TIMEOUT_SECONDS * 1000,
      cloudstackWaitTimeoutMs: e.CLOUDSTACK_WAIT_TIMEOUT_SECONDS * 1000,
      pollIntervalMs: e.POLL_INTERVAL_MS,
    },
    estimates: {
      migrationBytesPerSecond: e.ESTIMATE_MIGRATION_MBYTES_PER_SECOND * 1_000_000,
      hostRebootMs: e.ESTIMATE_HOST_REBOOT_SECONDS * 1000,
    },
    stateDir: e.STATE_DIR,
    hooksFile: e.HOOKS_FILE,
    logLevel: e.LOG_LEVEL,
  };
}

/**
 * The environment a process sees: variables from a `.env` file (if there is one) overridden by the
 * real environment, so an operator's explicit `export` always wins.
 */
export function readEnvironment(processEnv: Env = process.env, dotEnvPath = '.env'): Env {
  const fromFile = existsSync(dotEnvPath) ? parseEnv(readFileSync(dotEnvPath, 'utf8')) : {};
  return { ...fromFile, ...processEnv };
}

const REDACTED = '[redacted]';

/** A copy of the configuration fit for printing: every secret replaced. */
export function redactConfig(config: Config): Config {
  return {
    ...config,
    cloudstack: { ...config.cloudstack, apiKey: REDACTED, secretKey: REDACTED },
    xapi: { ...config.xapi, password: REDACTED },
    ssh: { ...config.ssh, passphrase: config.ssh.passphrase === undefined ? undefined : REDACTED },
  };
}

/** The secret values of an environment, so that callers can scrub them from text they did not write. */
export function secretValues(env: Env): string[] {
  return Object.entries(env)
    .filter(([name, value]) => SECRET_VARIABLES.has(name) && value !== undefined && value.length >= 4)
    .map(([, value]) => value as string);
}
