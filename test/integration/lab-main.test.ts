/**
 * `npm run lab` as a user runs it: a separate process whose first stdout line and `export` lines are
 * enough for any client (our XAPI client, the standard OpenSSH client, a shell), stopped with Ctrl-C.
 */
import { type ChildProcess, execFile, spawn } from 'node:child_process';
import { randomInt } from 'node:crypto';
import { existsSync, statSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import ssh2 from 'ssh2';
import { afterEach, describe, expect, it } from 'vitest';
import type { LabInfo } from '../../lab/lab.js';
import { generateHostKey } from '../../lab/ssh-keys.js';
import { XapiClient } from '../../src/xapi/client.js';
import { XapiPool } from '../../src/xapi/pool-api.js';
import { until } from '../support/lab-waits.js';

const run = promisify(execFile);
const ROOT = fileURLToPath(new URL('../..', import.meta.url));
const STARTUP_TIMEOUT_MS = 20_000;

/** The names of DESIGN.md section 4 a lab provides. */
const DESIGN_VARIABLES = [
  'CLOUDSTACK_URL',
  'CLOUDSTACK_API_KEY',
  'CLOUDSTACK_SECRET_KEY',
  'XAPI_USERNAME',
  'XAPI_PASSWORD',
  'XAPI_PROTOCOL',
  'XAPI_PORT',
  'SSH_USERNAME',
  'SSH_PORT',
  'SSH_PRIVATE_KEY_FILE',
  'SSH_KNOWN_HOSTS_FILE',
];

interface LabProcess {
  child: ChildProcess;
  stdout(): string;
  stderr(): string;
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
}

const processes: ChildProcess[] = [];

afterEach(() => {
  // Only a test that failed half-way leaves one running.
  for (const child of processes.splice(0))
    if (child.exitCode === null && child.signalCode === null) child.kill();
});

function startLabProcess(args: string[]): LabProcess {
  const child = spawn(process.execPath, ['--import', 'tsx', 'lab/main.ts', ...args], {
    cwd: ROOT,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  processes.push(child);
  let stdout = '';
  let stderr = '';
  child.stdout?.setEncoding('utf8').on('data', (chunk: string) => {
    stdout += chunk;
  });
  child.stderr?.setEncoding('utf8').on('data', (chunk: string) => {
    stderr += chunk;
  });
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
    child.once('exit', (code, signal) => resolve({ code, signal })),
  );
  return { child, stdout: () => stdout, stderr: () => stderr, exited };
}

/** Waits for the "Lab running" line, written after the JSON and export lines. */
async function running(lab: LabProcess): Promise<void> {
  await until(
    () => {
      if (lab.child.exitCode !== null) throw new Error(`the lab exited early:\n${lab.stderr()}`);
      return lab.stderr().includes('Lab running:');
    },
    'the lab to start',
    STARTUP_TIMEOUT_MS,
    50,
  );
}

/** Exit status and stderr of a lab started with bad flags (it must not start at all). */
async function refusedWith(args: string[]): Promise<{ code: number | null; stderr: string }> {
  const lab = startLabProcess(args);
  const { code } = await lab.exited;
  return { code, stderr: lab.stderr() };
}

describe('npm run lab', () => {
  it('prints what clients need, serves them, and stops cleanly on SIGINT', async () => {
    const subnet = `127.${randomInt(100, 250)}.${randomInt(0, 256)}`;
    const lab = startLabProcess(['--hosts', '3', '--vms', '6', '--speed', 'fast', '--subnet', subnet]);
    await running(lab);

    const [first = '', ...rest] = lab.stdout().trimEnd().split('\n');
    const info = JSON.parse(first) as LabInfo;
    expect(info.cloudstack.url).toMatch(
      new RegExp(`^http://${subnet.replaceAll('.', '\\.')}\\.1:\\d+/client/api$`),
    );
    expect(info.cloudstack.apiKey).toMatch(/^\S{20,}$/);
    expect(info.cloudstack.secretKey).toMatch(/^\S{20,}$/);
    expect(info.xapi).toMatchObject({ protocol: 'http', username: 'root', port: expect.any(Number) });
    expect(info.xapi.password).toMatch(/^\S{8,}$/);
    expect(info.ssh).toMatchObject({ username: 'root', port: expect.any(Number) });
    expect(existsSync(info.ssh.knownHostsFile)).toBe(true);
    expect(statSync(info.ssh.privateKeyFile).mode & 0o777).toBe(0o600);
    expect(info.cluster.name).toBe('CLUSTER-1');
    expect(info.hosts).toEqual([
      { name: 'host1', address: `${subnet}.11` },
      { name: 'host2', address: `${subnet}.12` },
      { name: 'host3', address: `${subnet}.13` },
    ]);

    expect(rest.every((line) => /^export [A-Z_]+=\S+$/.test(line))).toBe(true);
    const exported = rest.map((line) => line.slice('export '.length).split('=')[0]);
    expect(exported).toEqual(expect.arrayContaining(DESIGN_VARIABLES));
    // A shell reads the values back exactly (quoting included).
    const script = `${rest.join('\n')}\nfor name in ${DESIGN_VARIABLES.join(' ')}; do eval "printf '%s\\n' \\"\\$$name\\""; done`;
    const { stdout: values } = await run('sh', ['-c', script], { timeout: 5_000 });
    expect(values.split('\n').slice(0, -1)).toEqual([
      info.cloudstack.url,
      info.cloudstack.apiKey,
      info.cloudstack.secretKey,
      info.xapi.username,
      info.xapi.password,
      'http',
      String(info.xapi.port),
      'root',
      String(info.ssh.port),
      info.ssh.privateKeyFile,
      info.ssh.knownHostsFile,
    ]);

    const host = info.hosts[1];
    if (!host) throw new Error('three hosts expected');
    const ssh = await run(
      'ssh',
      [
        '-F',
        '/dev/null',
        '-i',
        info.ssh.privateKeyFile,
        '-o',
        `UserKnownHostsFile=${info.ssh.knownHostsFile}`,
        '-o',
        'StrictHostKeyChecking=yes',
        '-o',
        'BatchMode=yes',
        '-o',
        'ConnectTimeout=5',
        '-p',
        String(info.ssh.port),
        `root@${host.address}`,
        'true',
      ],
      { timeout: 10_000 },
    );
    expect(ssh.stderr).not.toMatch(/warning|denied|verification failed/i);
    await until(
      () => lab.stderr().includes('ssh.exec host2 {"command":"true","exitCode":0}'),
      'the lab logs the login',
    );
    expect(lab.stderr()).toMatch(/ssh\.auth host2 \{"ok":true,"method":"publickey","username":"root"\}/);

    const client = await XapiClient.connect({
      hosts: [host.address],
      port: info.xapi.port,
      protocol: info.xapi.protocol,
      username: info.xapi.username,
      password: info.xapi.password,
      callTimeoutMs: 3_000,
      loginTimeoutMs: 5_000,
      taskPollIntervalMs: 50,
    });
    const vms = await new XapiPool(client).getVms();
    await client.logout();
    const guests = vms.filter((vm) => !vm.isControlDomain && !vm.isATemplate && !vm.isASnapshot);
    expect(
      guests
        .filter((vm) => vm.powerState === 'Running')
        .map((vm) => vm.nameLabel)
        .sort(),
    ).toEqual(['vm01', 'vm02', 'vm03', 'vm04', 'vm05', 'vm06']);

    lab.child.kill('SIGINT');
    expect(await lab.exited).toEqual({ code: 0, signal: null });
    expect(lab.stderr()).toMatch(/Stopping the lab\. Invariants: all held \(0 migrations, reboots \{\}\)/);
    expect(existsSync(info.ssh.privateKeyFile)).toBe(false);
  });

  it('refuses bad flags with exit code 2 and the usage, starting nothing', async () => {
    const cases = [
      ['--bogus'],
      ['--hosts', '1'],
      ['--hosts', '300'],
      ['--subnet', '127.300.0'],
      ['--xapi-port', '70000'],
    ];
    const results = await Promise.all(cases.map((args) => refusedWith(args)));
    results.forEach(({ code, stderr }, i) => {
      expect({ args: cases[i], code }).toEqual({ args: cases[i], code: 2 });
      expect(stderr).toContain('Usage: npm run lab --');
      expect(stderr).not.toContain('Lab running');
    });
  });
});

describe('lab SSH keys', () => {
  it('are always well formed, although ssh2 drops a leading zero byte of 1 ed25519 key in 256', () => {
    for (let i = 0; i < 1_200; i++) {
      const { publicKey, privateKey } = generateHostKey();
      for (const key of [publicKey, privateKey]) {
        const parsed = ssh2.utils.parseKey(key);
        expect(parsed).not.toBeInstanceOf(Error);
      }
      // string "ssh-ed25519" + string <32-byte key>
      expect(Buffer.from(publicKey.split(' ')[1] ?? '', 'base64')).toHaveLength(4 + 11 + 4 + 32);
    }
  });
});
