/**
 * `npm run lab -- --hosts 4 --vms 20`: runs a lab until Ctrl-C. The first stdout line is one JSON
 * object with everything a client needs; the next lines are `export NAME=value` lines, so
 * `eval "$(npm run -s lab -- ... | tail -n +2)"` configures the CLI. Operations go to stderr.
 */
import { parseArgs } from 'node:util';
import { labEnvironment, startLab } from './lab.js';
import { isTimingPreset, TIMING_PRESETS } from './timing-presets.js';

const USAGE = `Usage: npm run lab -- [--hosts N] [--vms N] [--seed N] [--cluster NAME] [--speed realistic|demo|fast]
                      [--subnet 127.A.B] [--xapi-port P] [--ssh-port P] [--cloudstack-port P]
                      [--no-ha] [--no-auto-poweron] [--quiet]`;

const MAX_HOSTS = 244;

function fail(message: string): never {
  process.stderr.write(`${message}\n${USAGE}\n`);
  process.exit(2);
}

function positive(name: string, value: string | undefined, fallback: number): number {
  if (value === undefined) return fallback;
  if (!/^\d+$/.test(value)) fail(`--${name} must be a whole number (got ${JSON.stringify(value)})`);
  return Number(value);
}

/** 0 picks a free port. */
function port(name: string, value: string | undefined): number {
  const chosen = positive(name, value, 0);
  if (chosen > 65_535) fail(`--${name} must be a TCP port, 0 to 65535 (got ${chosen})`);
  return chosen;
}

async function main(): Promise<void> {
  let parsed: ReturnType<typeof parse>;
  try {
    parsed = parse();
  } catch (error) {
    fail(error instanceof Error ? error.message : String(error));
  }
  const { values } = parsed;
  if (values.help) {
    process.stdout.write(`${USAGE}\n`);
    return;
  }
  const speed = values.speed ?? 'demo';
  if (!isTimingPreset(speed)) fail(`--speed must be realistic, demo or fast (got ${JSON.stringify(speed)})`);
  const hosts = positive('hosts', values.hosts, 4);
  if (hosts < 2) fail('--hosts must be at least 2: a rolling reboot needs somewhere to move VMs');
  // Hosts get .11, .12, ... of the subnet: the last one must still be an address.
  if (hosts > MAX_HOSTS) fail(`--hosts must be at most ${MAX_HOSTS} (one address each in the subnet)`);
  const subnet = values.subnet ?? '127.77.0';
  if (!/^127\.\d{1,3}\.\d{1,3}$/.test(subnet) || subnet.split('.').some((octet) => Number(octet) > 255))
    fail('--subnet must be the first three octets of a loopback address, e.g. 127.77.0');
  const xapiPort = port('xapi-port', values['xapi-port']);
  const sshPort = port('ssh-port', values['ssh-port']);
  const cloudstackPort = port('cloudstack-port', values['cloudstack-port']);

  const lab = await startLab({
    hosts,
    vms: positive('vms', values.vms, 20),
    seed: positive('seed', values.seed, 42),
    clusterName: values.cluster ?? 'CLUSTER-1',
    subnet,
    xapiPort,
    sshPort,
    cloudstackPort,
    timings: TIMING_PRESETS[speed],
    haEnabled: !values['no-ha'],
    autoPoweron: !values['no-auto-poweron'],
  });

  process.stdout.write(`${JSON.stringify(lab.info)}\n`);
  for (const [name, value] of Object.entries(labEnvironment(lab.info))) {
    process.stdout.write(`export ${name}=${shellQuote(value)}\n`);
  }
  process.stderr.write(
    `Lab running: cluster ${lab.info.cluster.name}, ${lab.info.hosts.length} hosts, ` +
      `${lab.model.guestVms().filter((vm) => vm.powerState === 'Running').length} running VMs, speed ${speed}. Ctrl-C stops it.\n`,
  );
  if (!values.quiet) {
    lab.log.subscribe((op) => {
      if (op.kind === 'xapi.call' || op.kind === 'cloudstack.call' || op.kind === 'xapi.login') return;
      const who = [op.host, op.vm].filter(Boolean).join(' ');
      process.stderr.write(
        `+${(op.at / 1000).toFixed(1)}s ${op.kind} ${who} ${op.detail ? JSON.stringify(op.detail) : ''}\n`,
      );
    });
  }

  let stopping = false;
  const stop = async () => {
    if (stopping) return;
    stopping = true;
    const report = lab.checkInvariants();
    process.stderr.write(
      `Stopping the lab. Invariants: ${report.ok ? 'all held' : report.violations.join('; ')} ` +
        `(${report.migrations} migrations, reboots ${JSON.stringify(report.reboots)})\n`,
    );
    await lab.stop();
    process.exit(0);
  };
  process.on('SIGINT', stop);
  process.on('SIGTERM', stop);
}

function parse() {
  return parseArgs({
    options: {
      hosts: { type: 'string' },
      vms: { type: 'string' },
      seed: { type: 'string' },
      cluster: { type: 'string' },
      speed: { type: 'string' },
      subnet: { type: 'string' },
      'xapi-port': { type: 'string' },
      'ssh-port': { type: 'string' },
      'cloudstack-port': { type: 'string' },
      'no-ha': { type: 'boolean' },
      'no-auto-poweron': { type: 'boolean' },
      quiet: { type: 'boolean' },
      help: { type: 'boolean', short: 'h' },
    },
    strict: true,
    allowPositionals: false,
  });
}

function shellQuote(value: string): string {
  return /^[\w@%+=:,./-]+$/.test(value) ? value : `'${value.replaceAll("'", "'\\''")}'`;
}

main().catch((error: unknown) => {
  process.stderr.write(`lab failed to start: ${error instanceof Error ? error.message : String(error)}\n`);
  process.exit(1);
});
