import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { type Env, loadConfig, readEnvironment, redactConfig } from '../../src/config.js';
import { ConfigError } from '../../src/errors.js';

const dir = mkdtempSync(join(tmpdir(), 'crb-config-'));
const keyFile = join(dir, 'id_ed25519');
const knownHosts = join(dir, 'known_hosts');
writeFileSync(keyFile, 'key');
writeFileSync(knownHosts, '');

const valid: Env = {
  CLOUDSTACK_URL: 'https://cloud.example.com/client/api',
  CLOUDSTACK_API_KEY: 'api-key-value',
  CLOUDSTACK_SECRET_KEY: 'secret-key-value-s3cr3t',
  XAPI_PASSWORD: 'xapi-password-s3cr3t',
  SSH_PRIVATE_KEY_FILE: keyFile,
  SSH_KNOWN_HOSTS_FILE: knownHosts,
};

function problemsOf(env: Env): string[] {
  try {
    loadConfig(env);
  } catch (error) {
    expect(error).toBeInstanceOf(ConfigError);
    return (error as ConfigError).problems as string[];
  }
  throw new Error('expected a ConfigError');
}

describe('loadConfig', () => {
  it('applies production defaults', () => {
    const config = loadConfig(valid);
    expect(config.xapi).toMatchObject({ username: 'root', protocol: 'https', port: 443, tlsInsecure: false });
    expect(config.ssh).toMatchObject({ username: 'root', port: 22 });
    expect(config.timings).toEqual({
      hostRebootTimeoutMs: 1_800_000,
      hostShutdownTimeoutMs: 600_000,
      migrationTimeoutMs: 1_800_000,
      cloudstackWaitTimeoutMs: 900_000,
      pollIntervalMs: 5000,
    });
    expect(config.stateDir).toBe('./state');
  });

  it('defaults the XAPI port to 80 for plain http', () => {
    expect(loadConfig({ ...valid, XAPI_PROTOCOL: 'http' }).xapi.port).toBe(80);
  });

  it('reports every problem at once, one message per variable', () => {
    const problems = problemsOf({
      CLOUDSTACK_URL: 'ftp://nope',
      POLL_INTERVAL_MS: 'soon',
      XAPI_PROTOCOL: 'gopher',
    });
    expect(problems).toEqual(
      expect.arrayContaining([
        'CLOUDSTACK_URL must be an http(s) URL like https://cloud.example.com/client/api',
        expect.stringMatching(/^CLOUDSTACK_API_KEY is required/),
        expect.stringMatching(/^CLOUDSTACK_SECRET_KEY is required/),
        expect.stringMatching(/^XAPI_PASSWORD is required/),
        expect.stringMatching(/^SSH_PRIVATE_KEY_FILE is required/),
        expect.stringMatching(/^SSH_KNOWN_HOSTS_FILE is required/),
        'POLL_INTERVAL_MS must be a whole number of milliseconds',
        'XAPI_PROTOCOL must be https or http',
      ]),
    );
    expect(problems).toHaveLength(8);
  });

  it('refuses a missing key file and contradictory TLS settings', () => {
    const problems = problemsOf({
      ...valid,
      SSH_PRIVATE_KEY_FILE: join(dir, 'missing'),
      XAPI_CA_FILE: knownHosts,
      XAPI_TLS_INSECURE: 'true',
    });
    expect(problems).toEqual([
      'SSH_PRIVATE_KEY_FILE file does not exist',
      'XAPI_TLS_INSECURE cannot be true together with XAPI_CA_FILE; choose one',
    ]);
  });

  it('never echoes a secret value in its messages', () => {
    const problems = problemsOf({
      ...valid,
      CLOUDSTACK_URL: 'not a url s3cr3t',
      HOST_REBOOT_TIMEOUT_SECONDS: '-5',
    });
    const text = problems.join('\n');
    expect(text).toContain('HOST_REBOOT_TIMEOUT_SECONDS');
    expect(text).not.toContain('s3cr3t');
  });

  it('redacts secrets when printed', () => {
    const printed = JSON.stringify(
      redactConfig(loadConfig({ ...valid, SSH_PRIVATE_KEY_PASSPHRASE: 'pass-s3cr3t' })),
    );
    expect(printed).not.toContain('s3cr3t');
    expect(printed).not.toContain('api-key-value');
    expect(printed).toContain('[redacted]');
  });
});

describe('readEnvironment', () => {
  it('reads .env and lets the real environment win', () => {
    const envFile = join(dir, '.env');
    writeFileSync(envFile, 'XAPI_PORT=8443\nSSH_PORT=2222\n# comment\n');
    const env = readEnvironment({ SSH_PORT: '22' }, envFile);
    expect(env.XAPI_PORT).toBe('8443');
    expect(env.SSH_PORT).toBe('22');
  });
});
