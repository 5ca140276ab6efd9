// Runs the real controller (src/main.ts) as a child process against the local cluster.
import { spawn, type ChildProcess } from 'node:child_process';
import { createWriteStream, mkdirSync } from 'node:fs';
import path from 'node:path';
import { ensureCrds, kubeconfigPath, repoRoot } from './cluster.ts';

export interface LogLine {
  message: string;
  level: string;
  [key: string]: unknown;
}

/** Copies a child's stdout and stderr to a log file and hands each complete line to onLine. */
/**
 * The Node flags the controller runs with everywhere (Dockerfile, `npm start`, the demo, tests,
 * the bench): V8 then grows the heap less eagerly, keeping RSS near the live set.
 */
export const CONTROLLER_NODE_FLAGS = ['--optimize-for-size'];

export function teeLines(child: ChildProcess, logFile: string, onLine: (line: string) => void): void {
  const sink = createWriteStream(logFile, { flags: 'a' });
  let buffered = '';
  const take = (chunk: Buffer) => {
    sink.write(chunk);
    buffered += chunk.toString();
    let newline: number;
    while ((newline = buffered.indexOf('\n')) >= 0) {
      onLine(buffered.slice(0, newline));
      buffered = buffered.slice(newline + 1);
    }
  };
  child.stdout?.on('data', take);
  child.stderr?.on('data', take);
  child.on('close', () => sink.end());
}

export class ControllerProcess {
  readonly lines: LogLine[] = [];
  readonly logFile: string;
  #child: ChildProcess;
  #exited: Promise<number | null>;

  private constructor(child: ChildProcess, logFile: string) {
    this.#child = child;
    this.logFile = logFile;
    teeLines(child, logFile, (line) => {
      try {
        this.lines.push(JSON.parse(line) as LogLine);
      } catch {
        this.lines.push({ level: 'raw', message: line });
      }
    });
    // 'close', not 'exit': only then has every line the process wrote been read.
    this.#exited = new Promise((resolve) => child.on('close', (code) => resolve(code)));
  }

  /** Starts a controller and resolves once it logs "Started controller". */
  static async start(
    name: string,
    args: string[] = [],
    env: Record<string, string> = {},
  ): Promise<ControllerProcess> {
    const dir = path.join(repoRoot, '.cluster', 'test-logs');
    mkdirSync(dir, { recursive: true });
    const child = spawn(
      process.execPath,
      [...CONTROLLER_NODE_FLAGS, path.join(repoRoot, 'src', 'main.ts'), ...args],
      {
        cwd: repoRoot,
        env: { ...process.env, KUBECONFIG: kubeconfigPath, LOG_LEVEL: 'debug', ...env },
        stdio: ['ignore', 'pipe', 'pipe'],
      },
    );
    const controller = new ControllerProcess(child, path.join(dir, `${name}-${Date.now()}.log`));
    const deadline = Date.now() + 30_000;
    while (!controller.lines.some((l) => l.message === 'Started controller')) {
      if (child.exitCode !== null)
        throw new Error(`controller exited (${child.exitCode}): ${controller.tail()}`);
      if (Date.now() > deadline) {
        // Never leave it running: a stray controller reconciles every namespace of later tests.
        await controller.kill();
        throw new Error(`controller did not start: ${controller.tail()}`);
      }
      await new Promise((r) => setTimeout(r, 100));
    }
    return controller;
  }

  tail(lines = 30): string {
    return this.lines
      .slice(-lines)
      .map((l) => JSON.stringify(l))
      .join('\n');
  }

  /** The URL the controller logged it listens on, for a scheme ("https" or "http"). */
  url(scheme: 'https' | 'http'): string {
    const line = this.lines.find((l) => l.message.startsWith(`Listening on ${scheme}://`));
    if (!line) throw new Error(`the controller logged no ${scheme} address`);
    return line.message.slice('Listening on '.length);
  }

  /** The URL of the admission webhook (/mutate, /validate), apart from the issuer's. */
  admissionUrl(): string {
    const prefix = 'Listening for admission reviews on ';
    const line = this.lines.find((l) => l.message.startsWith(prefix));
    if (!line) throw new Error('the controller logged no admission address');
    return line.message.slice(prefix.length);
  }

  audit(event?: string): LogLine[] {
    return this.lines.filter((l) => l.audit === true && (!event || l.event === event));
  }

  get pid(): number | undefined {
    return this.#child.pid;
  }

  /** SIGTERM, and the exit code once it has exited. */
  async stop(): Promise<number | null> {
    if (this.#child.exitCode === null) this.#child.kill('SIGTERM');
    return this.#exited;
  }

  /** Sends a signal without waiting; `stop()` then waits for the exit. */
  signal(signal: NodeJS.Signals): void {
    this.#child.kill(signal);
  }

  async kill(): Promise<void> {
    this.#child.kill('SIGKILL');
    await this.#exited;
  }
}

/** One controller for the calling suite, stopped after it; its log tail is printed on failure. */
export function useController(name: string, args: string[] = []): () => ControllerProcess {
  let controller: ControllerProcess | undefined;
  before(async function () {
    this.timeout(90_000);
    // The controller's informers need the CRDs: on a fresh cluster, install them first.
    await ensureCrds();
    controller = await ControllerProcess.start(name, args);
  });
  afterEach(function () {
    if (this.currentTest?.state === 'failed' && controller) {
      console.log(`--- controller log tail (${controller.logFile}):\n${controller.tail(40)}`);
    }
  });
  after(async () => {
    await controller?.stop();
  });
  return () => {
    if (!controller) throw new Error('controller not started');
    return controller;
  };
}

/** The distinct grant ids that these controllers audited as issued for one request. */
export function issuedGrantIds(controllers: ControllerProcess[], requestUid: string): unknown[] {
  const ids = controllers
    .flatMap((c) => c.audit('grant.issued'))
    .filter((l) => (l.request as { uid: string }).uid === requestUid)
    .map((l) => l.grantId);
  return [...new Set(ids)];
}
