/**
 * What a benchmark child reports about itself: resident memory and CPU time, sampled, so the
 * parent sees the peak and not just the last value. `maxRssBytes` is the kernel's high-water mark.
 */
export interface UsageSample {
  kind: 'usage';
  at: number;
  rssBytes: number;
  maxRssBytes: number;
  heapUsedBytes: number;
  cpuUserMs: number;
  cpuSystemMs: number;
}

export function sampleUsage(): UsageSample {
  const usage = process.resourceUsage();
  return {
    kind: 'usage',
    at: Date.now(),
    rssBytes: process.memoryUsage.rss(),
    maxRssBytes: usage.maxRSS * 1024,
    heapUsedBytes: process.memoryUsage().heapUsed,
    cpuUserMs: usage.userCPUTime / 1000,
    cpuSystemMs: usage.systemCPUTime / 1000,
  };
}

/** Writes a sample every `intervalMs` (and one at once); returns a stop function. */
export function reportUsage(write: (line: string) => void, intervalMs: number): () => void {
  const emit = () => write(`${JSON.stringify(sampleUsage())}\n`);
  emit();
  const timer = setInterval(emit, intervalMs);
  timer.unref();
  return () => clearInterval(timer);
}
