// The hourglass controller (src/main.ts) as a child process of the benchmark. Unlike
// test/support/controller.ts it runs in its own process group, so a Ctrl-C in the terminal reaches
// the bench only: the controller must outlive it long enough to finalize the requests of the
// namespace the bench deletes on its way out. It keeps only counters of its log, not the lines.
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { teeLines } from '../../test/support/controller.ts';

export interface ProcStatus {
  /** Resident set size now, bytes. */
  rss: number;
  /** Peak resident set size (VmHWM), bytes. */
  hwm: number;
}

export function readProcStatus(pid: number): ProcStatus | undefined {
  try {
    const text = readFileSync(`/proc/${pid}/status`, 'utf8');
    const kib = (field: string) =>
      Number(new RegExp(`^${field}:\\s+(\\d+) kB`, 'm').exec(text)?.[1] ?? NaN) * 1024;
    return { rss: kib('VmRSS'), hwm: kib('VmHWM') };
  } catch {
    return undefined;
  }
}

export class BenchController {
  readonly logFile: string;
  /** log level → lines */
  readonly levels = new Map<string, number>();
  /** "level: message" of warn and error lines → count */
  readonly problems = new Map<string, number>();
  metricsUrl: string | undefined;
  instance: string | undefined;
  /** Called for each audit line (event name, request namespace and name, message). */
  onAudit: ((event: string, namespace: string, name: string, message: string) => void) | undefined;
  /** Called for each failed reconcile, with the kind of failure and the request key. */
  onReconcileError: ((kind: string, key: string) => void) | undefined;
  #started = false;
  #child: ChildProcess;
  #exited: Promise<number | null>;
  #rssTimer: NodeJS.Timeout | undefined;
  /** Peak VmRSS seen by the sampler, bytes. */
  sampledPeakRss = 0;
  rssSamples = 0;

  private constructor(child: ChildProcess, logFile: string) {
    this.#child = child;
    this.logFile = logFile;
    teeLines(child, logFile, (line) => this.#onLine(line));
    // 'close', not 'exit': only then has every line the process wrote been read.
    this.#exited = new Promise((resolve) => child.on('close', (code) => resolve(code)));
  }

  static async start(
    repoRoot: string,
    args: string[],
    env: Record<string, string>,
    nodeFlags: string[] = [],
  ): Promise<BenchController> {
    const dir = path.join(repoRoot, '.cluster', 'bench-logs');
    mkdirSync(dir, { recursive: true });
    const child = spawn(process.execPath, [...nodeFlags, path.join(repoRoot, 'src', 'main.ts'), ...args], {
      cwd: repoRoot,
      env: { ...process.env, ...env },
      stdio: ['ignore', 'pipe', 'pipe'],
      detached: true,
    });
    const controller = new BenchController(child, path.join(dir, `controller-${Date.now()}.log`));
    const deadline = Date.now() + 60_000;
    while (!controller.#started) {
      if (child.exitCode !== null || child.signalCode !== null)
        throw new Error(
          `controller exited (${child.exitCode ?? child.signalCode}); log: ${controller.logFile}`,
        );
      if (Date.now() > deadline) {
        await controller.kill();
        throw new Error(`controller did not start within 60 s; log: ${controller.logFile}`);
      }
      await new Promise((r) => setTimeout(r, 100));
    }
    controller.#rssTimer = setInterval(() => controller.sampleRss(), 500);
    controller.#rssTimer.unref();
    return controller;
  }

  #onLine(line: string): void {
    let entry: {
      level?: string;
      message?: string;
      serves?: string[];
      instance?: string;
      audit?: boolean;
      event?: string;
      request?: { namespace?: string; name?: string } | string;
      error?: string;
    };
    try {
      entry = JSON.parse(line) as typeof entry;
    } catch {
      entry = { level: 'raw', message: line };
    }
    const level = entry.level ?? 'raw';
    this.levels.set(level, (this.levels.get(level) ?? 0) + 1);
    const message = entry.message ?? '';
    if (level === 'warn' || level === 'error') {
      const key = `${level}: ${message.slice(0, 120)}`;
      this.problems.set(key, (this.problems.get(key) ?? 0) + 1);
    }
    const request = typeof entry.request === 'object' ? entry.request : undefined;
    if (entry.audit && entry.event)
      this.onAudit?.(entry.event, request?.namespace ?? '', request?.name ?? '', message);
    if (message === 'Failed to reconcile AccessRequest' && typeof entry.request === 'string')
      this.onReconcileError?.(failureKind(entry.error ?? ''), entry.request);
    const listening = /^Listening on (http:\/\/\S+)/.exec(message);
    if (listening && entry.serves?.includes('metrics')) this.metricsUrl = listening[1];
    if (message === 'Started controller') {
      this.#started = true;
      this.instance = entry.instance;
    }
  }

  get pid(): number | undefined {
    return this.#child.pid;
  }

  get running(): boolean {
    return this.#child.exitCode === null && this.#child.signalCode === null;
  }

  sampleRss(): ProcStatus | undefined {
    const status = this.#child.pid && this.running ? readProcStatus(this.#child.pid) : undefined;
    if (status && Number.isFinite(status.rss)) {
      this.sampledPeakRss = Math.max(this.sampledPeakRss, status.rss);
      this.rssSamples++;
    }
    return status;
  }

  /** The controller's own /metrics, as text; undefined when it does not answer. */
  async scrapeMetrics(): Promise<string | undefined> {
    if (!this.metricsUrl) return undefined;
    try {
      const response = await fetch(`${this.metricsUrl}/metrics`, { signal: AbortSignal.timeout(5000) });
      return response.ok ? await response.text() : undefined;
    } catch {
      return undefined;
    }
  }

  /** SIGTERM, then SIGKILL after `graceMs`; resolves with the exit code. */
  async stop(graceMs = 15_000): Promise<number | null> {
    if (this.#rssTimer) clearInterval(this.#rssTimer);
    if (this.running) this.#child.kill('SIGTERM');
    const timer = setTimeout(() => this.#child.kill('SIGKILL'), graceMs);
    const code = await this.#exited;
    clearTimeout(timer);
    return code;
  }

  async kill(): Promise<void> {
    if (this.#rssTimer) clearInterval(this.#rssTimer);
    if (this.running) this.#child.kill('SIGKILL');
    await this.#exited;
  }

  /** Synchronous last resort for process 'exit' handlers. */
  killNow(): void {
    if (this.running) this.#child.kill('SIGKILL');
  }
}

/** A short name for why a reconcile failed, from the logged error text. */
export function failureKind(error: string): string {
  if (error.includes('AlreadyExists')) return '409 AlreadyExists';
  if (error.includes('the object has been modified')) return '409 Conflict (stale resourceVersion)';
  if (error.includes('not cached yet')) return 'CacheBehind';
  const code = /HTTP-Code: (\d+)/.exec(error)?.[1];
  return code ? `HTTP ${code}` : error.split('\n')[0]?.slice(0, 60) || 'unknown';
}

/** The value of one series of a Prometheus text exposition, named exactly (labels included, if any). */
export function metricValue(text: string | undefined, series: string): number {
  const line = text?.split('\n').find((l) => l.startsWith(series + ' '));
  return line === undefined
    ? NaN
    : Number(
        line
          .slice(series.length + 1)
          .trim()
          .split(' ')[0],
      );
}

/** The first of these series that the exposition has, with its name. */
export function firstMetric(text: string | undefined, names: string[]): { name: string; value: number } {
  for (const name of names) {
    const value = metricValue(text, name);
    if (Number.isFinite(value)) return { name, value };
  }
  return { name: names[0] ?? '', value: NaN };
}

/** Approximate quantile from a Prometheus histogram's cumulative buckets (upper bound of the bucket). */
export function histogramQuantile(text: string | undefined, name: string, q: number): number {
  if (!text) return NaN;
  const buckets: { le: number; count: number }[] = [];
  for (const line of text.split('\n')) {
    const match = new RegExp(`^${name}_bucket\\{.*le="([^"]+)".*\\} (\\S+)`).exec(line);
    if (match)
      buckets.push({ le: match[1] === '+Inf' ? Infinity : Number(match[1]), count: Number(match[2]) });
  }
  const total = buckets.at(-1)?.count ?? 0;
  if (!total) return NaN;
  return buckets.find((b) => b.count >= q * total)?.le ?? NaN;
}
