/**
 * `npm run demo`: the whole product on one machine. Starts a lab (6 hosts, about 40 VMs, timings
 * scaled to about a minute), runs the dry run and then `--exec` through the real CLI code over
 * real sockets, and ends with the lab's own verdict on the safety invariants.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { runCli } from '../src/cli/run-cli.js';
import { startLab } from './lab.js';
import { TIMING_PRESETS } from './timing-presets.js';

const say = (text: string) => process.stdout.write(`\n=== ${text}\n`);

async function main(): Promise<number> {
  const stateDir = mkdtempSync(join(tmpdir(), 'crb-demo-state-'));
  say('Starting the lab: a CloudStack cluster of 6 XCP-ng hosts with 40 VMs, HA and auto_poweron on');
  const lab = await startLab({ hosts: 6, vms: 40, seed: 7, timings: TIMING_PRESETS.demo });
  try {
    for (const host of lab.info.hosts) {
      const vms = lab.model.residentGuests(lab.model.hostByName(host.name).ref).length;
      process.stdout.write(
        `  ${host.name} at ${host.address} (XAPI :${lab.info.xapi.port}, SSH :${lab.info.ssh.port}): ${vms} VMs\n`,
      );
    }
    const env = { ...lab.env(), STATE_DIR: stateDir, POLL_INTERVAL_MS: '250', LOG_LEVEL: 'warn' };
    const io = { env, stdout: process.stdout, stderr: process.stderr };

    say('reboot-cluster CLUSTER-1   (dry run: checks and plan, changes nothing)');
    const dryRun = await runCli(['CLUSTER-1'], io);
    if (dryRun !== 0) return dryRun;

    say('reboot-cluster CLUSTER-1 --exec   (Ctrl-C aborts at the next safe point)');
    const startedAt = Date.now();
    const code = await runCli(['CLUSTER-1', '--exec'], io);
    const seconds = Math.round((Date.now() - startedAt) / 1000);

    say("The lab's verdict, from its own operation log");
    const report = lab.checkInvariants();
    const guests = lab.model.guestVms().filter((vm) => vm.powerState === 'Running').length;
    const lines = [
      `  run: exit ${code} after ${seconds} s`,
      `  reboots: ${Object.entries(report.reboots)
        .map(([host, n]) => `${host} x${n}`)
        .join(', ')}`,
      `  migrations: ${report.migrations} (failed: ${report.failedMigrations}), at most ${report.maxConcurrentMigrations} at once`,
      `  running VMs: ${guests} of ${lab.baseline.runningVms.length}`,
      `  invariants I1 I2 I3 I6 and "no VM lost": ${report.ok ? 'all held' : `VIOLATED:\n    ${report.violations.join('\n    ')}`}`,
    ];
    process.stdout.write(`${lines.join('\n')}\n`);
    return code === 0 && report.ok ? 0 : 1;
  } finally {
    await lab.stop();
    rmSync(stateDir, { recursive: true, force: true });
  }
}

main().then(
  (code) => process.exit(code),
  (error: unknown) => {
    process.stderr.write(`demo failed: ${error instanceof Error ? error.stack : String(error)}\n`);
    process.exit(1);
  },
);
