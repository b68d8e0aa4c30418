import { cpus, totalmem } from 'node:os';
import { round } from './stats.js';
import { serverVersion } from './store/admin.js';

/** Machine facts written into every results file. */
export async function machine(connectionString: string): Promise<Record<string, unknown>> {
  const cpu = cpus();
  return {
    cpus: cpu.length,
    cpu_model: cpu[0]?.model ?? 'unknown',
    memory_gb: round(totalmem() / 2 ** 30, 1),
    node: process.version,
    platform: `${process.platform}-${process.arch}`,
    postgres: await serverVersion(connectionString).catch(() => 'unreachable'),
  };
}
