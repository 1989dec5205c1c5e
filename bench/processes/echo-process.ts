/**
 * The floor of the ack benchmark: an HTTP server that reads each request and answers 200 at once,
 * in a process of its own like the bot. Whatever latency it shows under the same load generator is
 * the generator's and the loopback's, not the bot's. Writes {"kind":"ready","port":…}.
 */
import { createServer } from 'node:http';

const server = createServer((request, response) => {
  request.resume();
  request.on('end', () => {
    response.writeHead(200, { 'content-type': 'text/plain' });
    response.end('');
  });
});
server.listen(0, '127.0.0.1', () => {
  const address = server.address();
  const port = typeof address === 'object' && address ? address.port : 0;
  process.stdout.write(`${JSON.stringify({ kind: 'ready', port })}\n`);
});
process.once('SIGTERM', () => {
  server.closeAllConnections();
  server.close(() => process.exit(0));
});
