const MiB = 1024 ** 2;
const GiB = 1024 ** 3;

/** Memory for people: `8.0 GiB`, `512 MiB` under 1 GiB, plain bytes under 1 MiB. */
export function formatBytes(bytes: number): string {
  if (!Number.isFinite(bytes)) return String(bytes);
  const sign = bytes < 0 ? '-' : '';
  const size = Math.abs(bytes);
  if (size >= GiB) return `${sign}${(size / GiB).toFixed(1)} GiB`;
  if (size >= MiB) {
    const mib = Math.round(size / MiB);
    // 1023.6 MiB rounds up to a whole GiB; say so rather than print "1024 MiB".
    return mib >= 1024 ? `${sign}1.0 GiB` : `${sign}${mib} MiB`;
  }
  return `${sign}${size} B`;
}
