/**
 * Builds the engine's dependencies from the configuration: the real CloudStack, XAPI and SSH
 * clients. The CLI and the worker both start here.
 */
import { readFileSync } from 'node:fs';
import { CloudStackClient } from './cloudstack/client.js';
import type { Config } from './config.js';
import type { CheckpointStore } from './engine/checkpoint.js';
import { FileCheckpointStore } from './engine/checkpoint.js';
import type { EngineEvent } from './engine/events.js';
import type { EngineDeps, HostShell, PoolConnection } from './engine/ports.js';
import type { Logger } from './log.js';
import { probeSsh, runSshCommand, type SshTarget } from './ssh/client.js';
import { XapiClient } from './xapi/client.js';
import { XapiPool } from './xapi/pool-api.js';

export function createEngineDeps(
  config: Config,
  options: { emit(event: EngineEvent): void; logger?: Logger; checkpoints?: CheckpointStore },
): EngineDeps {
  const cloud = new CloudStackClient({
    url: config.cloudstack.url,
    apiKey: config.cloudstack.apiKey,
    secretKey: config.cloudstack.secretKey,
    timeoutMs: config.cloudstack.timeoutMs,
    updateTimeoutMs: config.cloudstack.updateTimeoutMs,
    caFile: config.cloudstack.caFile,
    tlsInsecure: config.cloudstack.tlsInsecure,
  });
  return {
    cloud,
    connectPool: (addresses) => connectPool(config, addresses, options.logger),
    shell: createHostShell(config),
    checkpoints: options.checkpoints ?? new FileCheckpointStore(config.stateDir),
    timings: config.timings,
    estimates: config.estimates,
    emit: options.emit,
  };
}

async function connectPool(config: Config, addresses: string[], logger?: Logger): Promise<PoolConnection> {
  const client = await XapiClient.connect({
    hosts: addresses,
    port: config.xapi.port,
    protocol: config.xapi.protocol,
    caFile: config.xapi.caFile,
    tlsInsecure: config.xapi.tlsInsecure,
    username: config.xapi.username,
    password: config.xapi.password,
    callTimeoutMs: config.xapi.callTimeoutMs,
    loginTimeoutMs: config.xapi.loginTimeoutMs,
    taskPollIntervalMs: Math.min(config.timings.pollIntervalMs, 1000),
    logger,
  });
  return { pool: new XapiPool(client), close: () => client.logout() };
}

export function createHostShell(config: Config): HostShell {
  const privateKey = readFileSync(config.ssh.privateKeyFile);
  const target = (address: string, timeoutMs: number): SshTarget => ({
    host: address,
    port: config.ssh.port,
    username: config.ssh.username,
    privateKey,
    passphrase: config.ssh.passphrase,
    // Read each time: an operator who fixes known_hosts while a run waits is heard at once.
    knownHosts: readFileSync(config.ssh.knownHostsFile, 'utf8'),
    timeoutMs,
  });
  return {
    probe: (address) => probeSsh(target(address, config.ssh.timeoutMs)),
    run: (address, command, timeoutMs) => runSshCommand(target(address, timeoutMs), command),
  };
}
