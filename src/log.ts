/**
 * Structured JSON logging with pino. Secrets are redacted by key wherever they appear in a logged
 * object, as a second line of defence: code should not log them in the first place.
 */
import { type DestinationStream, type Logger, pino } from 'pino';

export type { Logger } from 'pino';

export const REDACTED_KEYS = [
  'password',
  'secretKey',
  'apiKey',
  'passphrase',
  'privateKey',
  'token',
  'signingSecret',
  'botToken',
  'appToken',
  'authorization',
  'signature',
];

export function createLogger(
  options: { level: string; name?: string },
  destination?: DestinationStream,
): Logger {
  return pino(
    {
      name: options.name ?? 'cluster-reboot-bot',
      level: options.level,
      redact: {
        paths: [...REDACTED_KEYS, ...REDACTED_KEYS.map((key) => `*.${key}`)],
        censor: '[redacted]',
      },
      timestamp: pino.stdTimeFunctions.isoTime,
    },
    destination ?? pino.destination(2),
  );
}

/** A logger that writes nothing, for tests and library use without a configured logger. */
export const silentLogger: Logger = pino({ level: 'silent' });
