/**
 * SSH key material for the lab: one client key the bot logs in with, one host key per simulated host, and a
 * known_hosts file that trusts exactly those host keys. Written to disk so the standard OpenSSH client and
 * the bot's own config (SSH_PRIVATE_KEY_FILE, SSH_KNOWN_HOSTS_FILE) can use the same files.
 */

import { chmodSync, mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import ssh2 from 'ssh2';
import { formatKnownHostsLine } from '../src/ssh/known-hosts.js';

export interface LabKeyPair {
  /** OpenSSH format. */
  privateKey: string;
  /** A `type base64 comment` line. */
  publicKey: string;
}

export interface LabSshMaterial {
  clientKeyFile: string;
  clientPrivateKey: string;
  clientPublicKey: string;
  knownHostsFile: string;
  hostKeys: Map<string, LabKeyPair>;
}

export function generateHostKey(comment = 'lab-host'): LabKeyPair {
  const pair = ssh2.utils.generateKeyPairSync('ed25519', { comment });
  return { privateKey: pair.private, publicKey: pair.public };
}

/** Synchronous so callers may use it with or without `await`. */
export function generateLabSshMaterial(
  dir: string,
  hosts: Array<{ name: string; address: string }>,
  port: number,
): LabSshMaterial {
  const hostKeyDir = path.join(dir, 'host-keys');
  mkdirSync(hostKeyDir, { recursive: true, mode: 0o700 });

  const client = generateHostKey('cluster-reboot-bot@lab');
  const clientKeyFile = path.join(dir, 'id_ed25519');
  writePrivate(clientKeyFile, client.privateKey);
  writeFileSync(`${clientKeyFile}.pub`, `${client.publicKey}\n`, { mode: 0o644 });

  const hostKeys = new Map<string, LabKeyPair>();
  const knownHostsLines: string[] = [];
  for (const host of hosts) {
    const hostKey = generateHostKey(`root@${host.name}`);
    hostKeys.set(host.name, hostKey);
    writePrivate(path.join(hostKeyDir, host.name), hostKey.privateKey);
    knownHostsLines.push(formatKnownHostsLine(host.address, port, hostKey.publicKey));
  }
  const knownHostsFile = path.join(dir, 'known_hosts');
  writeFileSync(knownHostsFile, `${knownHostsLines.join('\n')}\n`, { mode: 0o644 });

  return {
    clientKeyFile,
    clientPrivateKey: client.privateKey,
    clientPublicKey: client.publicKey,
    knownHostsFile,
    hostKeys,
  };
}

/** `mode` on write applies only to new files, and OpenSSH refuses a private key others can read. */
function writePrivate(file: string, content: string): void {
  writeFileSync(file, content, { mode: 0o600 });
  chmodSync(file, 0o600);
}
