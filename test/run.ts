// Runs mocha over the given globs and ends with one summary line, "mocha: N passed, N failed",
// that CI reads. Usage: node test/run.ts 'test/unit/**/*.test.ts' [...]
import { glob } from 'node:fs/promises';
import Mocha from 'mocha';

const timeout = Number(process.env.MOCHA_TIMEOUT ?? 120_000);
const mocha = new Mocha({ reporter: 'spec', timeout, slow: 5_000 });
if (process.env.MOCHA_GREP) mocha.grep(process.env.MOCHA_GREP);
const files: string[] = [];
for (const pattern of process.argv.slice(2)) for await (const file of glob(pattern)) files.push(file);
files.sort().forEach((file) => mocha.addFile(file));
await mocha.loadFilesAsync();
const runner = mocha.run((failures) => {
  const { passes = 0, pending = 0 } = runner.stats ?? {};
  console.log(`\nmocha: ${passes} passed, ${failures} failed${pending ? `, ${pending} skipped` : ''}`);
  process.exitCode = failures > 0 || passes === 0 ? 1 : 0;
});
