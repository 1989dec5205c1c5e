import { measureBurst } from './bot-acks.js';
import { startBotFixture } from './bot-fixture.js';
const f = await startBotFixture({ hosts: 2, vms: 4, timings: {}, pollIntervalMs: 250 });
try { const t = Date.now(); console.log(await measureBurst(f, 200, 'dry run'), Date.now() - t); } finally { await f.stop(); }
process.exit(0);
