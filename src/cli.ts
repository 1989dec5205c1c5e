#!/usr/bin/env node
import { runCli } from './cli/run-cli.js';

const code = await runCli(process.argv.slice(2), {
  env: process.env,
  stdout: process.stdout,
  stderr: process.stderr,
  readDotEnv: true,
});
process.exitCode = code;
