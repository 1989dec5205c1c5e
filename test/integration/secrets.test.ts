/**
 * Secrets stay secret (DESIGN.md I8): the whole service (`startService`, ROLE=all, as `npm start`
 * wires it) runs a Slack-approved rolling reboot of a lab with recognizable secret values (Slack
 * bot token and signing secret, CloudStack keys, XAPI password, the passphrase of an encrypted SSH
 * key), then the typical failures (wrong XAPI password, wrong CloudStack secret key, wrong SSH
 * passphrase). None of the secrets, in any usual encoding, may appear in the logs (debug level),
 * anything sent to Slack, the audit records, any key or value in Redis, the state directory, or
 * the errors themselves.
 */

import { createCipheriv, randomBytes } from 'node:crypto';
import { mkdtempSync, readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import ssh2 from 'ssh2';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Lab } from '../../lab/lab.js';
import { RedisAuditLog } from '../../src/audit/audit-log.js';
import { CloudStackClient } from '../../src/cloudstack/client.js';
import { CloudStackError, SshAuthError, XapiError } from '../../src/errors.js';
import { createLogger, type Logger } from '../../src/log.js';
import type { RunRecord } from '../../src/queue/contracts.js';
import { createRedis, type Redis } from '../../src/queue/redis.js';
import { RedisRunStore } from '../../src/queue/run-store.js';
import { type RunningService, startService } from '../../src/service.js';
import { probeSsh } from '../../src/ssh/client.js';
import { XapiClient } from '../../src/xapi/client.js';
import { freePort } from '../support/free-port.js';
import { FAST_ENGINE_ENV, startTestLab } from '../support/lab-cli.js';
import { startTestRedis, type TestRedis } from '../support/redis-server.js';
import { type SlackApiServer, startSlackApiServer } from '../support/slack-api-server.js';
import { SlackRequester } from '../support/slack-requests.js';

const BOT_TOKEN = 'xoxb-SECRET-bot-token-5c1e9d';
const SIGNING_SECRET = 'SECRET-signing-secret-7f02ab';
const PASSPHRASE = 'SECRET-ssh-passphrase-90be';
const WRONG = {
  xapiPassword: 'SECRET-wrong-xapi-password-4410',
  cloudstackSecret: 'SECRET-wrong-cloudstack-secret-a7c3',
  passphrase: 'SECRET-wrong-ssh-passphrase-0c5f',
};
const OPS = 'COPS';
const REQUESTER = 'UREQ';
const APPROVER = 'UAPP';

let lab: Lab;
let redisServer: TestRedis;
let redis: Redis;
let slack: SlackApiServer;
let stateDir: string;
let keyFile: string;
let logger: Logger;
const logLines: string[] = [];
/** HTTP answers of the bot to Slack (acks), which Slack shows to users. */
const acks: string[] = [];
/** Error texts collected from direct calls with wrong credentials. */
const errorTexts: string[] = [];
const services: RunningService[] = [];

beforeAll(async () => {
  [lab, redisServer, slack] = await Promise.all([
    startTestLab({ hosts: 2, vms: 4 }),
    startTestRedis(),
    startSlackApiServer({ token: BOT_TOKEN }),
  ]);
  redis = createRedis(redisServer.url, 'client');
  stateDir = mkdtempSync(join(tmpdir(), 'crb-secrets-'));
  keyFile = join(stateDir, 'id_ed25519_encrypted');
  writeFileSync(keyFile, encryptOpenSshKey(readFileSync(lab.info.ssh.privateKeyFile, 'utf8'), PASSPHRASE), {
    mode: 0o600,
  });
  logger = createLogger(
    { level: 'debug' },
    new Writable({
      write(chunk, _encoding, done) {
        logLines.push(String(chunk));
        done();
      },
    }),
  );
});

afterAll(async () => {
  for (const service of services) await service.stop().catch(() => undefined);
  redis?.disconnect();
  await Promise.all([lab?.stop(), redisServer?.stop(), slack?.close()]);
});

/** Every secret of the test, real and wrong, by name. */
function secrets(): Record<string, string> {
  const privateKeyLines = (pem: string) =>
    pem
      .split('\n')
      .filter((line) => line.length >= 40 && !line.startsWith('-----'))
      .slice(1);
  const values: Record<string, string> = {
    BOT_TOKEN,
    SIGNING_SECRET,
    PASSPHRASE,
    XAPI_PASSWORD: lab.info.xapi.password,
    CLOUDSTACK_API_KEY: lab.info.cloudstack.apiKey,
    CLOUDSTACK_SECRET_KEY: lab.info.cloudstack.secretKey,
    WRONG_XAPI_PASSWORD: WRONG.xapiPassword,
    WRONG_CLOUDSTACK_SECRET: WRONG.cloudstackSecret,
    WRONG_PASSPHRASE: WRONG.passphrase,
  };
  for (const [file, pem] of [
    ['KEY', readFileSync(lab.info.ssh.privateKeyFile, 'utf8')],
    ['ENCRYPTED_KEY', readFileSync(keyFile, 'utf8')],
  ] as const) {
    privateKeyLines(pem).forEach((line, i) => {
      values[`${file}_LINE_${i}`] = line;
    });
  }
  return values;
}

/** The secrets found in `text`, as they are, base64 (standard or URL), percent- or JSON-encoded. */
function leaksIn(text: string): string[] {
  const found: string[] = [];
  for (const [name, secret] of Object.entries(secrets())) {
    const forms = new Set([
      secret,
      Buffer.from(secret).toString('base64').replace(/=+$/, ''),
      Buffer.from(secret).toString('base64url'),
      encodeURIComponent(secret),
      JSON.stringify(secret).slice(1, -1),
    ]);
    for (const form of forms) if (form.length >= 8 && text.includes(form)) found.push(name);
  }
  return [...new Set(found)];
}

function baseEnv(): Record<string, string> {
  return {
    ...lab.env(),
    ...FAST_ENGINE_ENV,
    SSH_PRIVATE_KEY_FILE: keyFile,
    SSH_PRIVATE_KEY_PASSPHRASE: PASSPHRASE,
    STATE_DIR: stateDir,
    REDIS_URL: redisServer.url,
    SLACK_BOT_TOKEN: BOT_TOKEN,
    SLACK_SIGNING_SECRET: SIGNING_SECRET,
    SLACK_API_URL: slack.apiUrl,
    ALLOWED_CHANNEL_IDS: OPS,
    REQUESTER_USER_IDS: REQUESTER,
    APPROVER_USER_IDS: APPROVER,
    LOCK_TTL_SECONDS: '5',
    STALLED_INTERVAL_SECONDS: '5',
  };
}

interface Bot {
  prefix: string;
  runs: RedisRunStore;
  /** A slash command; its ack is kept for the leak check. */
  command(text: string): Promise<void>;
  /** Clicks `actionId` on the run's message as `user`. */
  click(user: string, actionId: string, run: RunRecord): Promise<void>;
  /** The next run of this bot to reach one of `states`. */
  settled(states: RunRecord['state'][], timeoutMs: number): Promise<RunRecord>;
}

async function startBot(
  name: string,
  role: 'all' | 'bot',
  overrides: Record<string, string> = {},
): Promise<Bot> {
  const port = await freePort();
  const prefix = `${redisServer.prefix}${name}`;
  const service = await startService(
    { ...baseEnv(), ...overrides, ROLE: role, PORT: String(port), QUEUE_PREFIX: prefix },
    { logger },
  );
  services.push(service);
  const requester = new SlackRequester(`http://127.0.0.1:${port}/slack/events`, SIGNING_SECRET);
  const runs = new RedisRunStore(redis, prefix);
  let responses = 0;
  const keep = (answer: { status: number; text: string }) => {
    expect(answer.status).toBe(200);
    acks.push(answer.text);
  };
  return {
    prefix,
    runs,
    command: async (text) => {
      responses += 1;
      keep(
        await requester.command({
          text,
          userId: REQUESTER,
          channelId: OPS,
          responseUrl: slack.responseUrl(`${name}-${responses}`),
        }),
      );
    },
    click: async (user, actionId, run) => {
      responses += 1;
      keep(
        await requester.click({
          actionId,
          value: run.runId,
          userId: user,
          channelId: OPS,
          messageTs: run.messageTs as string,
          responseUrl: slack.responseUrl(`${name}-${responses}`),
        }),
      );
    },
    settled: async (states, timeoutMs) => {
      let settled: RunRecord | undefined;
      await expect
        .poll(
          async () => {
            settled = (await runs.listRecent({ limit: 1 })).find((run) => states.includes(run.state));
            return settled !== undefined;
          },
          { timeout: timeoutMs, interval: 100 },
        )
        .toBe(true);
      return settled as RunRecord;
    },
  };
}

describe('secrets through a whole run and its typical failures', () => {
  it('a Slack-approved rolling reboot with every secret configured', async () => {
    const bot = await startBot('ok', 'all');
    await bot.command('CLUSTER-1 --exec');
    const planned = await bot.settled(['awaiting_approval'], 20_000);
    await expect.poll(async () => (await bot.runs.get(planned.runId))?.messageTs).toBeTruthy();
    const run = (await bot.runs.get(planned.runId)) as RunRecord;
    await bot.click(APPROVER, 'approve', run);
    const finished = await bot.settled(['done', 'failed', 'aborted', 'needs_attention'], 60_000);
    expect(finished.state).toBe('done');
    expect(lab.checkInvariants().violations).toEqual([]);
    expect(lab.log.ofKind('ssh.auth').some((op) => op.detail?.ok === true)).toBe(true);
  }, 90_000);

  it('a wrong XAPI password: the dry run says so, without the password', async () => {
    const bot = await startBot('xapi', 'bot', { XAPI_PASSWORD: WRONG.xapiPassword });
    await bot.command('CLUSTER-1');
    const run = await bot.settled(['dry_run'], 20_000);
    expect(JSON.stringify(run.findings)).toContain('SESSION_AUTHENTICATION_FAILED');
  });

  it('a wrong CloudStack secret key: the dry run says so, without the keys', async () => {
    const bot = await startBot('cs', 'bot', { CLOUDSTACK_SECRET_KEY: WRONG.cloudstackSecret });
    await bot.command('CLUSTER-1');
    const run = await bot.settled(['dry_run'], 20_000);
    expect(JSON.stringify(run.findings)).toMatch(/CloudStack listClusters failed: 401/);
  });

  it('a wrong SSH key passphrase: pre-flight refuses and says so, without the passphrase', async () => {
    const bot = await startBot('ssh', 'bot', { SSH_PRIVATE_KEY_PASSPHRASE: WRONG.passphrase });
    await bot.command('CLUSTER-1 --exec');
    const refused = await bot.settled(['refused'], 20_000);
    expect(JSON.stringify(refused.findings)).toContain('SSH_CHECK_FAILED');
    expect(JSON.stringify(refused.findings)).toContain('SSH private key');
  });

  it('the same failures met directly: the errors carry no secret', async () => {
    const xapi = await XapiClient.connect({
      hosts: lab.info.hosts.map((h) => h.address),
      port: lab.info.xapi.port,
      protocol: 'http',
      username: lab.info.xapi.username,
      password: WRONG.xapiPassword,
      callTimeoutMs: 2_000,
      loginTimeoutMs: 2_000,
      taskPollIntervalMs: 50,
    }).then(
      () => undefined,
      (error: unknown) => error,
    );
    expect(xapi).toBeInstanceOf(XapiError);

    const cloudstack = await new CloudStackClient({
      url: lab.info.cloudstack.url,
      apiKey: lab.info.cloudstack.apiKey,
      secretKey: WRONG.cloudstackSecret,
      timeoutMs: 2_000,
    })
      .listClusters({ name: 'CLUSTER-1' })
      .then(
        () => undefined,
        (error: unknown) => error,
      );
    expect(cloudstack).toBeInstanceOf(CloudStackError);

    const host = lab.info.hosts[0] as { address: string };
    const ssh = await Promise.all(
      [WRONG.passphrase, undefined].map((passphrase) =>
        probeSsh({
          host: host.address,
          port: lab.info.ssh.port,
          username: 'root',
          privateKey: readFileSync(keyFile),
          ...(passphrase ? { passphrase } : {}),
          knownHosts: readFileSync(lab.info.ssh.knownHostsFile, 'utf8'),
          timeoutMs: 3_000,
        }).then(
          () => undefined,
          (error: unknown) => error,
        ),
      ),
    );
    for (const error of ssh) expect(error).toBeInstanceOf(SshAuthError);

    for (const error of [xapi, cloudstack, ...ssh]) errorTexts.push(everythingIn(error));
    expect(errorTexts.join('\n')).toContain('SESSION_AUTHENTICATION_FAILED');
  });

  it('none of the secrets appears in logs, Slack, audit records, Redis, the state directory or errors', async () => {
    // Everything the runs had to say reached Slack (the writers space posts about a second apart).
    const threadSays = (runText: string, text: string) =>
      slack.waitFor(
        (server) =>
          server
            .messages({ channel: OPS })
            .some(
              (m) =>
                m.threadTs !== undefined && m.text.startsWith(text) && threadOf(server, m.threadTs, runText),
            ),
        30_000,
      );
    await threadSays('done', 'Rolling reboot done');
    for (const service of services.splice(0)) await service.stop();

    const places: Record<string, string> = {
      logs: logLines.join(''),
      'Slack Web API calls': JSON.stringify(
        slack.calls().map((call) => ({ method: call.method, body: call.body })),
      ),
      'Slack response_url answers': JSON.stringify(slack.responses()),
      'acks to Slack': acks.join('\n'),
      'audit records': '',
      redis: await dumpRedis(`${redisServer.prefix}*`),
      'state directory': dumpDirectory(stateDir, [keyFile]),
      errors: errorTexts.join('\n'),
    };
    for (const name of ['ok', 'xapi', 'cs', 'ssh']) {
      places['audit records'] += JSON.stringify(
        await new RedisAuditLog(redis, `${redisServer.prefix}${name}`).list(),
      );
    }

    // The places hold what they should, so an empty result means something.
    expect(places.logs).toContain('Slack bot started');
    expect(places['Slack Web API calls']).toContain('chat.postMessage');
    expect(places['audit records']).toContain('host_done');
    expect(places.redis).toContain('"runId"');
    expect(places.errors).toContain('SSH');
    expect(places['Slack Web API calls']).toContain('SSH private key');
    // The token reaches Slack, as it must, only as the bearer of each call.
    expect(slack.calls().every((call) => call.token === BOT_TOKEN)).toBe(true);

    const leaks = Object.fromEntries(Object.entries(places).map(([place, text]) => [place, leaksIn(text)]));
    expect(leaks).toEqual(Object.fromEntries(Object.keys(places).map((place) => [place, []])));
  });
});

// ---------------------------------------------------------------------------------------------
// Helpers

/** Whether the thread's root message (the run's plan) is in `state` now. */
function threadOf(server: SlackApiServer, threadTs: string, state: string): boolean {
  return server.message(threadTs)?.text.endsWith(state) ?? false;
}

/** Message, stack, own properties and causes of an error, as text. */
function everythingIn(error: unknown, depth = 0): string {
  if (!(error instanceof Error) || depth > 5) return String(error);
  const own = Object.fromEntries(
    Object.getOwnPropertyNames(error).map((key) => [key, (error as never)[key]]),
  );
  return [error.message, error.stack ?? '', safeJson(own), everythingIn(error.cause, depth + 1)].join('\n');
}

function safeJson(value: unknown): string {
  try {
    return JSON.stringify(value, (_key, v: unknown) => (typeof v === 'bigint' ? v.toString() : v));
  } catch {
    return String(value);
  }
}

/** Every key under `pattern` with its value, whatever its type. */
async function dumpRedis(pattern: string): Promise<string> {
  const keys: string[] = [];
  let cursor = '0';
  do {
    const [next, batch] = await redis.scan(cursor, 'MATCH', pattern, 'COUNT', 500);
    cursor = next;
    keys.push(...batch);
  } while (cursor !== '0');
  expect(keys.length).toBeGreaterThan(10);
  const parts: string[] = [];
  for (const key of keys.sort()) {
    const type = await redis.type(key);
    const value =
      type === 'string'
        ? await redis.get(key)
        : type === 'hash'
          ? await redis.hgetall(key)
          : type === 'list'
            ? await redis.lrange(key, 0, -1)
            : type === 'set'
              ? await redis.smembers(key)
              : type === 'zset'
                ? await redis.zrange(key, '0', '-1', 'WITHSCORES')
                : type === 'stream'
                  ? await redis.xrange(key, '-', '+')
                  : `(${type})`;
    parts.push(`${key} ${safeJson(value)}`);
  }
  return parts.join('\n');
}

function dumpDirectory(dir: string, skip: string[]): string {
  const parts: string[] = [];
  for (const entry of readdirSync(dir)) {
    const path = join(dir, entry);
    if (skip.includes(path)) continue;
    parts.push(path, statSync(path).isDirectory() ? dumpDirectory(path, skip) : readFileSync(path, 'utf8'));
  }
  return parts.join('\n');
}

// ---------------------------------------------------------------------------------------------
// An encrypted copy of the lab's SSH client key (OpenSSH format, aes256-ctr, bcrypt KDF), built
// here because the lab writes its key unencrypted and neither ssh2 nor node:crypto re-encrypts one.

const MAGIC = Buffer.from('openssh-key-v1\0');
const bcryptPbkdf = createRequire(createRequire(import.meta.url).resolve('ssh2'))('bcrypt-pbkdf') as {
  pbkdf(
    pass: Buffer,
    passLength: number,
    salt: Buffer,
    saltLength: number,
    key: Buffer,
    keyLength: number,
    rounds: number,
  ): number;
};

function encryptOpenSshKey(pem: string, passphrase: string): string {
  const raw = Buffer.from(pem.replace(/-----[A-Z ]+-----/g, '').replace(/\s+/g, ''), 'base64');
  if (!raw.subarray(0, MAGIC.length).equals(MAGIC)) throw new Error('not an OpenSSH private key');
  const reader = new SshReader(raw, MAGIC.length);
  if (reader.string().toString() !== 'none') throw new Error('the lab key is already encrypted');
  reader.string(); // kdf name
  reader.string(); // kdf options
  if (reader.uint32() !== 1) throw new Error('expected one key');
  const publicKey = reader.string();
  const privateBlock = reader.string();
  // checkint, checkint, then key type, public key, private key and comment: the padding follows.
  const inner = new SshReader(privateBlock, 8);
  for (let i = 0; i < 4; i++) inner.string();
  const content = privateBlock.subarray(0, inner.offset);
  const padding = Buffer.from(Array.from({ length: (16 - (content.length % 16)) % 16 }, (_, i) => i + 1));
  const salt = randomBytes(16);
  // Few rounds: the bot decrypts the key for every SSH probe, and the test makes many.
  const rounds = 2;
  const keyAndIv = Buffer.alloc(48);
  const pass = Buffer.from(passphrase);
  if (bcryptPbkdf.pbkdf(pass, pass.length, salt, salt.length, keyAndIv, keyAndIv.length, rounds) !== 0) {
    throw new Error('bcrypt_pbkdf failed');
  }
  const cipher = createCipheriv('aes-256-ctr', keyAndIv.subarray(0, 32), keyAndIv.subarray(32));
  const encrypted = Buffer.concat([cipher.update(Buffer.concat([content, padding])), cipher.final()]);
  const body = Buffer.concat([
    MAGIC,
    sshString(Buffer.from('aes256-ctr')),
    sshString(Buffer.from('bcrypt')),
    sshString(Buffer.concat([sshString(salt), uint32(rounds)])),
    uint32(1),
    sshString(publicKey),
    sshString(encrypted),
  ]);
  const text = `-----BEGIN OPENSSH PRIVATE KEY-----\n${body.toString('base64').replace(/.{70}/g, '$&\n')}\n-----END OPENSSH PRIVATE KEY-----\n`;
  // The copy is what it should be: the same key with the passphrase, unusable without it.
  const parse = (passphrase?: string) => {
    const parsed = ssh2.utils.parseKey(text, passphrase);
    return Array.isArray(parsed) ? parsed[0] : parsed;
  };
  const withPassphrase = parse(passphrase);
  if (withPassphrase instanceof Error || !withPassphrase?.getPublicSSH().equals(publicKey)) {
    throw new Error('the encrypted copy does not parse back to the same key');
  }
  if (!(parse() instanceof Error)) throw new Error('the encrypted copy parses without its passphrase');
  return text;
}

class SshReader {
  constructor(
    readonly buffer: Buffer,
    public offset: number,
  ) {}

  uint32(): number {
    const value = this.buffer.readUInt32BE(this.offset);
    this.offset += 4;
    return value;
  }

  string(): Buffer {
    const length = this.uint32();
    const value = this.buffer.subarray(this.offset, this.offset + length);
    this.offset += length;
    return value;
  }
}

function uint32(value: number): Buffer {
  const buffer = Buffer.alloc(4);
  buffer.writeUInt32BE(value);
  return buffer;
}

function sshString(value: Buffer): Buffer {
  return Buffer.concat([uint32(value.length), value]);
}
