/**
 * What the fault matrix and the soak share: judging that a halted run names everything the lab shows
 * changed ("nothing left changed without saying so"), and doing what an operator does after a host key
 * changed (scan the new key, put it in known_hosts).
 */
import { readFileSync, writeFileSync } from 'node:fs';
import ssh2 from 'ssh2';
import type { Lab } from '../../lab/lab.js';
import { formatKnownHostsLine, keyBlobType, knownHostsName } from '../../src/ssh/known-hosts.js';

/**
 * The changes the lab shows against its baseline that no line of `leftChanged` names: an empty list
 * means the run told the team about everything it left changed.
 */
export function unreportedChanges(lab: Lab, leftChanged: readonly string[]): string[] {
  const said = (pattern: RegExp) => leftChanged.some((line) => pattern.test(line));
  const missing: string[] = [];
  const before = lab.baseline.restorable;
  const now = lab.model.restorableState();
  if (
    lab.cloudstack.managedState() !== lab.baseline.managedState &&
    !said(/^CloudStack cluster .* is Unmanaged/)
  )
    missing.push(`CloudStack managed state is ${lab.cloudstack.managedState()}`);
  if (now.haEnabled !== before.haEnabled && !said(/^pool HA is off/)) missing.push('pool HA is off');
  if (now.autoPoweron !== before.autoPoweron && !said(/^pool auto_poweron /))
    missing.push(`pool auto_poweron is ${now.autoPoweron}`);
  for (const host of lab.model.hosts) {
    if (host.enabled && host.live) continue;
    if (!said(new RegExp(`^${host.name} (is disabled|was rebooting)`)))
      missing.push(`${host.name} is ${host.live ? 'disabled' : 'not live'}`);
  }
  return missing;
}

/** `ssh-keyscan` for one lab host: the key it offers now, as a known_hosts line. */
export function scanHostKey(address: string, port: number, timeoutMs = 5_000): Promise<string> {
  return new Promise((resolve, reject) => {
    const client = new ssh2.Client();
    let offered: Buffer | undefined;
    const timer = setTimeout(() => {
      client.end();
      reject(new Error(`no host key from ${address}:${port} within ${timeoutMs} ms`));
    }, timeoutMs);
    const done = () => {
      clearTimeout(timer);
      if (offered)
        resolve(formatKnownHostsLine(address, port, `${keyBlobType(offered)} ${offered.toString('base64')}`));
      else reject(new Error(`${address}:${port} offered no host key`));
    };
    // Refusing the key ends the handshake: the key is all a scan wants.
    client.on('error', done);
    client.on('close', done);
    client.connect({
      host: address,
      port,
      username: 'keyscan',
      readyTimeout: timeoutMs,
      hostVerifier: (key: Buffer) => {
        offered = key;
        return false;
      },
    });
  });
}

/** Replaces the known_hosts entries of `address:port` with `line`, as an operator would. */
export function replaceKnownHost(knownHostsFile: string, address: string, port: number, line: string): void {
  const name = knownHostsName(address, port);
  const kept = readFileSync(knownHostsFile, 'utf8')
    .split('\n')
    .filter((existing) => existing.trim() !== '' && existing.split(' ')[0] !== name);
  writeFileSync(knownHostsFile, `${[...kept, line].join('\n')}\n`);
}
