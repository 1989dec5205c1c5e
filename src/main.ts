/**
 * Entry point of `npm start`. ROLE=bot|worker|all picks what runs; SIGTERM / SIGINT stop it
 * gracefully (running reboots stop at their next safe point and are handed to another worker).
 */
import { startLab } from '../lab/lab.js';
import { TIMING_PRESETS } from '../lab/timing-presets.js';
import { readEnvironment } from './config.js';
import { ConfigError, describeError } from './errors.js';
import { type LabStarter, startService } from './service.js';

const startDemoLab: LabStarter = async (logger) => {
  const lab = await startLab({
    hosts: 4,
    vms: 20,
    clusterName: 'LAB-CLUSTER-1',
    timings: TIMING_PRESETS.demo,
  });
  logger.info(
    { cluster: lab.info.cluster.name, hosts: lab.info.hosts, cloudstack: lab.info.cloudstack.url },
    'LAB=true: a simulated cluster is running; try /reboot-cluster LAB-CLUSTER-1',
  );
  return { env: { POLL_INTERVAL_MS: '500', ...lab.env() }, stop: () => lab.stop() };
};

try {
  const service = await startService(readEnvironment(process.env), { startLab: startDemoLab });
  let stopping = false;
  const stop = async (signal: string) => {
    if (stopping) return;
    stopping = true;
    process.stderr.write(`${signal}: stopping (running reboots stop at their next safe point)\n`);
    await service.stop();
    process.exit(0);
  };
  process.on('SIGTERM', () => void stop('SIGTERM'));
  process.on('SIGINT', () => void stop('SIGINT'));
} catch (error) {
  process.stderr.write(`${describeError(error)}\n`);
  process.exit(error instanceof ConfigError ? 2 : 1);
}
