// Runs the boundary fuzzer (boundary-run.ts) in a child process.
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const here = dirname(fileURLToPath(import.meta.url));

export interface Report {
  calls: number;
  slow: string[];
  counts: Record<string, Record<string, number>>;
  errorCodes: Record<string, number>;
  failures: { target: string; verdict: string; error: string; args: string }[];
  detach: { job: string; how: string; rounds: number; mismatches: number; errors: string[] }[];
}

/** Runs the fuzzer in a child; resolves with its report, or rejects naming the call that crashed or hung. */
export function runBoundaryFuzz(seed: number, calls: number, detachRounds: number, timeoutMs: number, callMs = 15_000): Promise<Report> {
  const dir = mkdtempSync(join(tmpdir(), 'anomalyncd-fuzz-'));
  const out = join(dir, 'report.json');
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['--expose-gc', join(here, 'boundary-run.js'), String(seed), String(calls), out, String(detachRounds)], {
      stdio: ['ignore', 'ignore', 'pipe'],
      env: { ...process.env, BOUNDARY_CALL_MS: String(callMs) },
    });
    let stderr = '';
    child.stderr.on('data', (d: Buffer) => (stderr = (stderr + d.toString()).slice(-4000)));
    const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
    child.on('exit', (code, signal) => {
      clearTimeout(timer);
      const last = existsSync(out + '.last') ? readFileSync(out + '.last', 'utf8') : '?';
      const ok = code === 0 && existsSync(out);
      const report = ok ? (JSON.parse(readFileSync(out, 'utf8')) as Report) : undefined;
      rmSync(dir, { recursive: true, force: true });
      if (!report) reject(new Error(`boundary fuzzer exited with ${code ?? signal} during: ${last}\n${stderr}`));
      else resolve(report);
    });
  });
}

