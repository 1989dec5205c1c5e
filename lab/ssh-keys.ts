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

/** Draws that must all come out malformed before giving up: (1/256)^16, never in practice. */
const MAX_KEY_DRAWS = 16;

export function generateHostKey(comment = 'lab-host'): LabKeyPair {
  // ssh2's keygen strips leading zero bytes from the 32-byte ed25519 public key, so 1 key in 256 comes
  // out malformed (a 31-byte key nothing can parse) and the lab would fail to start: draw again.
  for (let draw = 0; draw < MAX_KEY_DRAWS; draw++) {
    const pair = ssh2.utils.generateKeyPairSync('ed25519', { comment });
    if (isWellFormed(pair.public) && isWellFormed(pair.private)) {
      return { privateKey: pair.private, publicKey: pair.public };
    }
  }
  throw new Error(`ssh2 generated ${MAX_KEY_DRAWS} malformed ed25519 keys in a row`);
}

function isWellFormed(key: string): boolean {
  const parsed = ssh2.utils.parseKey(key);
  const first = Array.isArray(parsed) ? parsed[0] : parsed;
  return first !== undefined && !(first instanceof Error);
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
