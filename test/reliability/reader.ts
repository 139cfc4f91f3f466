/**
 * The torn-read reader: a separate Node process that reads every managed file in a tight loop and
 * checks each read is one complete, self-consistent generation. It stops when `<dir>/.stop-reader`
 * appears and prints one JSON line: reads done, bad reads (first few described), missing files.
 */
import { spawn } from "node:child_process";

export interface ReaderReport {
  reads: number;
  bad: number;
  missing: number;
  examples: string[];
}

/** A file content that carries its own check: header and trailer name the same generation and the body length. */
export function generation(gen: number, size: number): string {
  const body = String.fromCharCode(97 + (gen % 26)).repeat(size);
  return `BEGIN ${gen}\n${body}\nEND ${gen} ${size}\n`;
}

const READER = `
import { readFileSync, existsSync } from "node:fs";
const [dir, ...files] = process.argv.slice(1);
const re = /^BEGIN (\\d+)\\n([a-z]*)\\nEND (\\d+) (\\d+)\\n$/;
let reads = 0, bad = 0, missing = 0;
const examples = [];
process.stdout.write("ready\\n");
outer: for (;;) {
  for (let i = 0; i < 50; i++) {
    for (const f of files) {
      let text;
      try { text = readFileSync(f, "latin1"); } catch (e) { missing++; if (examples.length < 5) examples.push(f + ": " + e.code); continue; }
      reads++;
      const m = re.exec(text);
      const ok = m && m[1] === m[3] && m[2].length === Number(m[4]) && (m[2].length === 0 || m[2] === String.fromCharCode(97 + (Number(m[1]) % 26)).repeat(m[2].length));
      if (!ok) { bad++; if (examples.length < 5) examples.push(f + ": " + text.length + " bytes: " + JSON.stringify(text.slice(0, 40))); }
    }
  }
  if (existsSync(dir + "/.stop-reader")) break outer;
}
process.stdout.write(JSON.stringify({ reads, bad, missing, examples }) + "\\n");
`;

export function startReader(stopDir: string, files: string[]): { ready: Promise<void>; report: Promise<ReaderReport> } {
  const child = spawn(process.execPath, ["--input-type=module", "-e", READER, stopDir, ...files], { stdio: ["ignore", "pipe", "inherit"] });
  let out = "";
  let readyResolve: () => void = () => undefined;
  const ready = new Promise<void>((r) => (readyResolve = r));
  child.stdout.on("data", (d: Buffer) => {
    out += d.toString();
    if (out.includes("ready\n")) readyResolve();
  });
  const report = new Promise<ReaderReport>((resolve, reject) => {
    child.on("error", reject);
    child.on("close", () => {
      const line = out.split("\n").filter((l) => l.startsWith("{")).pop();
      if (!line) reject(new Error(`reader printed no report: ${out}`));
      else resolve(JSON.parse(line) as ReaderReport);
    });
  });
  return { ready, report };
}
