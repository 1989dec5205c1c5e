import type { LabTimings } from './pool-model.js';

/**
 * Named speeds for the lab. `realistic` is close to a real XCP-ng host; `demo` makes a 6-host
 * rolling reboot take about a minute; `fast` is for tests.
 */
export const TIMING_PRESETS: Record<'realistic' | 'demo' | 'fast', LabTimings> = {
  realistic: {
    rebootDelayMs: 10_000,
    bootMs: 120_000,
    xapiStartMs: 30_000,
    xapiWarmupMs: 5_000,
    migrationOverheadMs: 2_000,
    bandwidthScale: 1,
  },
  demo: {
    rebootDelayMs: 500,
    bootMs: 3_000,
    xapiStartMs: 1_000,
    xapiWarmupMs: 300,
    migrationOverheadMs: 150,
    bandwidthScale: 0.2,
  },
  fast: {
    rebootDelayMs: 100,
    bootMs: 300,
    xapiStartMs: 150,
    xapiWarmupMs: 50,
    migrationOverheadMs: 20,
    bandwidthScale: 0.01,
  },
};

export type TimingPreset = keyof typeof TIMING_PRESETS;

export function isTimingPreset(value: string): value is TimingPreset {
  return value in TIMING_PRESETS;
}
