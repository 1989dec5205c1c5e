/**
 * A light load generator for slash commands. Every request is signed exactly as Slack signs it and
 * serialized before the clock starts, one connection each is opened before it too, then all are
 * written at once; each is timed from its write to the first byte of its answer (the status
 * line). So the time is the receiver's work and queueing, not this process building requests.
 */
import { connect, type Socket } from 'node:net';
import { type SlashCommandFields, slackSignature, slashCommandBody } from '../test/support/slack-requests.js';

export interface CommandAnswer {
  status: number;
  ms: number;
}

const TIMEOUT_MS = 15_000;

export async function sendAtOnce(
  url: string,
  secret: string,
  commands: readonly SlashCommandFields[],
): Promise<CommandAnswer[]> {
  const target = new URL(url);
  const port = Number(target.port);
  const requests = commands.map((fields) => rawRequest(target, secret, fields));
  const sockets = await Promise.all(requests.map(() => open(target.hostname, port)));
  try {
    const answers = sockets.map((socket, i) => answerOf(socket, requests[i] as Buffer));
    return await Promise.all(answers);
  } finally {
    for (const socket of sockets) socket.destroy();
  }
}

function rawRequest(target: URL, secret: string, fields: SlashCommandFields): Buffer {
  const body = slashCommandBody(fields);
  const timestamp = Math.floor(Date.now() / 1000);
  const head = [
    `POST ${target.pathname} HTTP/1.1`,
    `Host: ${target.host}`,
    'Content-Type: application/x-www-form-urlencoded',
    `Content-Length: ${Buffer.byteLength(body)}`,
    `X-Slack-Request-Timestamp: ${timestamp}`,
    `X-Slack-Signature: ${slackSignature(secret, timestamp, body)}`,
    'Connection: close',
  ].join('\r\n');
  return Buffer.from(`${head}\r\n\r\n${body}`);
}

function open(host: string, port: number): Promise<Socket> {
  return new Promise((resolve, reject) => {
    const socket = connect({ host, port });
    socket.setNoDelay(true);
    socket.setTimeout(TIMEOUT_MS, () => socket.destroy(new Error(`no connection to ${host}:${port}`)));
    socket.once('connect', () => resolve(socket));
    socket.once('error', reject);
  });
}

/** Writes the request; resolves with the status and the time to the first byte of the answer. */
function answerOf(socket: Socket, request: Buffer): Promise<CommandAnswer> {
  return new Promise((resolve, reject) => {
    let ms: number | undefined;
    let status = 0;
    socket.on('data', (chunk: Buffer) => {
      if (ms !== undefined) return;
      ms = performance.now() - started;
      status = Number(/^HTTP\/1\.[01] (\d{3})/.exec(chunk.toString('latin1', 0, 16))?.[1] ?? 0);
    });
    // The answer is complete when the server closes (Connection: close): nothing left half-read.
    socket.once('end', () =>
      ms === undefined ? reject(new Error('closed without an answer')) : resolve({ status, ms }),
    );
    socket.once('error', reject);
    socket.setTimeout(TIMEOUT_MS, () => socket.destroy(new Error(`no answer within ${TIMEOUT_MS} ms`)));
    const started = performance.now();
    socket.write(request);
  });
}
