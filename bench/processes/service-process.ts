/**
 * `npm start`'s own wiring (startService, ROLE=all) in a process of its own, configured by the
 * JSON environment in BENCH_SERVICE_ENV. Writes {"kind":"ready","port":…} once it listens, usage
 * samples while it runs, and {"kind":"stopped"} after SIGTERM.
 */
import { startService } from '../../src/service.js';
import { reportUsage } from './usage.js';

const write = (line: string) => process.stdout.write(line);
const raw = process.env.BENCH_SERVICE_ENV;
if (!raw) throw new Error('BENCH_SERVICE_ENV is required');
const service = await startService(JSON.parse(raw) as Record<string, string>);
const stopUsage = reportUsage(write, 500);
write(`${JSON.stringify({ kind: 'ready', port: service.port })}\n`);

process.once('SIGTERM', () => {
  stopUsage();
  void service
    .stop()
    .then(() => write(`${JSON.stringify({ kind: 'stopped' })}\n`))
    .finally(() => process.exit(0));
});
